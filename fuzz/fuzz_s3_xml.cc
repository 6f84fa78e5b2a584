// The S3 XML parsers (ListObjectsV2, ListObjectVersions, DeleteObjects result, error bodies)
// and URL coding: any body a store (or a man in the middle) sends must give a value or an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "s3/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)ds::s3::ParseErrorBody(body);
  // A truncated page without a continuation token parses; S3Client::ListObjects rejects it
  // ("truncated page without a new continuation token"), so it is not an invariant here.
  (void)ds::s3::ParseListObjectsV2(body);
  (void)ds::s3::ParseListObjectVersions(body);
  (void)ds::s3::ParseDeleteResult(body);

  for (bool plus : {false, true}) {
    ds::Result<std::string> dec = ds::s3::UriDecode(body, plus);
    if (dec.ok()) FUZZ_CHECK(dec->size() <= body.size(), "decoding never grows");
  }
  for (bool keep_slash : {false, true}) {
    std::string enc = ds::s3::UriEncode(body, keep_slash);
    ds::Result<std::string> back = ds::s3::UriDecode(enc, false);
    FUZZ_CHECK(back.ok() && *back == body, "UriDecode(UriEncode(x)) == x");
  }
  return 0;
}
