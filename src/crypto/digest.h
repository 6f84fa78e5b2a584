// Digests and encodings shared by the adapters (OpenSSL's libcrypto underneath).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ds::crypto {

std::string Hex(const unsigned char* data, size_t size);  // lower-case
std::string Sha256Hex(std::string_view data);             // 64 lower-case hex digits
std::string HmacSha256Hex(std::string_view key, std::string_view data);
std::string Base64(std::string_view data);     // standard alphabet, padded
std::string Md5Base64(std::string_view data);  // Content-MD5 header value

}  // namespace ds::crypto
