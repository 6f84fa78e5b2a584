// Shared by the parser's tests (parse_events_test.cc, parse_rgw_minio_test.cc,
// parse_errors_test.cc): reading the sample documents of tests/data/events, parsing text that
// must parse or must be rejected (failing the test otherwise), and builders of small AWS S3
// documents.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/parse_events.h"

namespace ds::parse_events_test {

using Metadata = std::vector<std::pair<std::string, std::string>>;

inline std::string ReadSample(const std::string& name) {
  const std::string path = std::string(DS_TEST_DATA_DIR) + "/events/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses a sample that must parse; fails the test (and returns an empty document) otherwise.
inline ParsedDocument ParseSample(const std::string& name) {
  Result<ParsedDocument> r = ParseNotification(ReadSample(name));
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  return r.ok() ? std::move(r).value() : ParsedDocument{};
}

inline ParsedDocument ParseText(std::string_view text) {
  Result<ParsedDocument> r = ParseNotification(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : ParsedDocument{};
}

// The error message of a document that must be rejected.
inline std::string ErrorOf(std::string_view text) {
  Result<ParsedDocument> r = ParseNotification(text);
  EXPECT_FALSE(r.ok()) << "accepted: " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

// A minimal AWS S3 record with the given event name and (encoded) key.
inline std::string Record(const std::string& name, const std::string& key,
                          const std::string& extra_object_fields = "") {
  return R"({"eventSource":"aws:s3","eventName":")" + name +
         R"(","s3":{"bucket":{"name":"plover-bin"},"object":{"key":")" + key + "\"" +
         extra_object_fields + "}}}";
}

inline std::string Doc(const std::string& records) { return R"({"Records":[)" + records + "]}"; }

// A JSON string literal holding `text` (to put a document inside an SNS Message or an SQS body).
inline std::string Quote(const std::string& text) { return nlohmann::json(text).dump(); }

}  // namespace ds::parse_events_test
