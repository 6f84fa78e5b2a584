// The product version, reported by --version, the User-Agent and delete_sync_build_info.
#include "common/version.h"

#include "common/version_info.h"  // generated from CMakeLists.txt's project(... VERSION ...)

namespace ds {
const char* Version() { return DS_VERSION; }
}  // namespace ds
