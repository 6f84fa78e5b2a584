// Reading Variables (credentials.h) and files for the providers. Private to src/aws/.
#pragma once

#include <string>
#include <string_view>

#include "aws/credentials.h"
#include "common/status.h"

namespace ds::aws {

// vars[name] with surrounding white space removed; "" when unset.
std::string Get(const Variables& vars, const char* name);
// `s` without leading and trailing white space.
std::string TrimSpace(std::string_view s);
// Lower-case ASCII.
std::string LowerAscii(std::string_view s);
// `path` with a leading "~/" replaced by `home`/ ("" when it needs a home and `home` is "").
std::string ExpandHome(const std::string& path, const std::string& home);
// The whole file, at most `max_bytes`. kNotFound when it does not exist, kIoError
// "read <what> <path>: <strerror>" otherwise; larger files are kInvalidArgument.
Result<std::string> ReadSmallFile(const std::string& path, const std::string& what,
                                  size_t max_bytes = 1024 * 1024);
// The regional STS endpoint for `region` ("" = the global https://sts.amazonaws.com).
std::string StsEndpointFor(const std::string& region);

}  // namespace ds::aws
