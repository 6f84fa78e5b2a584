// The HMAC key of an audit log (AuditOptions::hmac_key, --audit-hmac-key), read from its file.
#pragma once

#include <string>

#include "common/status.h"

namespace ds {

// Reads an HMAC key file: its bytes with trailing '\n' / '\r' bytes removed. Refuses a file that
// is missing, not a regular file, larger than 64 KiB or empty (after the removal); warns (log)
// when group or others may read it, or when the key is shorter than 16 bytes.
Result<std::string> LoadHmacKey(const std::string& path);

}  // namespace ds
