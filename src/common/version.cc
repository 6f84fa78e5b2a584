// The product version, reported by --version, the User-Agent and delete_sync_build_info.
#include "common/version.h"

namespace ds {
const char* Version() { return "0.1.0"; }
}  // namespace ds
