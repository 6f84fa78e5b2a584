// Shared helpers of the HTTP transports (filled as transports land).
#include "common/version.h"

namespace ds {
const char* Version() { return "0.1.0"; }
}  // namespace ds
