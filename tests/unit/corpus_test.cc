// Checks the parser against documents other projects published (shared/corpus/notifications,
// with expected.json giving the expected decoding of each) and against the Ceph RGW bodies captured
// in shared/design/rgw-samples. Neither directory is part of this repository: the tests read them
// in place and skip when they are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/parse_events.h"
#include "fakes/test_files.h"

namespace ds {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kCorpusDir = fs::path(DS_SOURCE_DIR "/../shared/corpus/notifications");
const fs::path kRgwDir = fs::path(DS_SOURCE_DIR "/../shared/design/rgw-samples");

using testfiles::ReadFile;

bool IsHex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string StripS3Prefix(const std::string& name) {
  return name.rfind("s3:", 0) == 0 ? name.substr(3) : name;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Parses one corpus file; a .jsonl file is one document per non-empty line, merged in line order.
Result<ParsedDocument> ParseCorpusFile(const fs::path& p) {
  const std::string text = ReadFile(p);
  if (p.extension() != ".jsonl") return ParseNotification(text);
  ParsedDocument all;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Result<ParsedDocument> r = ParseNotification(line);
    if (!r.ok()) return r.status();
    for (Event& e : r->events) all.events.push_back(std::move(e));
    all.test_events += r->test_events;
    all.non_s3_messages += r->non_s3_messages;
  }
  return all;
}

void CheckEntry(const json& entry) {
  const std::string file = entry.at("file").get<std::string>();
  const std::string wrapper = entry.value("wrapper", "none");
  SCOPED_TRACE(file);
  const fs::path path = kCorpusDir / file;
  ASSERT_TRUE(fs::exists(path)) << path;
  Result<ParsedDocument> parsed = ParseCorpusFile(path);

  // expected.json lists no expected errors today; honour one if an entry ever says so.
  if (entry.contains("error")) {
    EXPECT_FALSE(parsed.ok()) << "expected an error: " << entry["error"].dump();
    return;
  }
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const ParsedDocument& doc = *parsed;

  const json& records = entry.at("records");
  size_t expected_tests = 0;
  std::vector<const json*> expected_events;
  for (const json& r : records) {
    if (r.value("event_name", "") == "s3:TestEvent") {
      ++expected_tests;
    } else {
      expected_events.push_back(&r);
    }
  }
  EXPECT_EQ(doc.test_events, expected_tests);
  ASSERT_EQ(doc.events.size(), expected_events.size());
  if (records.empty()) {
    // A wrapper whose payload is not S3: counted, nothing to do, not an error.
    EXPECT_NE(wrapper, "none");
    EXPECT_GE(doc.non_s3_messages, 1u);
  } else {
    EXPECT_EQ(doc.non_s3_messages, 0u);
  }

  for (size_t i = 0; i < expected_events.size(); ++i) {
    const json& want = *expected_events[i];
    const Event& got = doc.events[i];
    SCOPED_TRACE("record " + std::to_string(i));

    EXPECT_EQ(got.bucket, want.at("bucket").get<std::string>());
    EXPECT_EQ(got.key, want.at("key_decoded").get<std::string>());

    const std::string event = want.at("event").get<std::string>();
    const EventAction action = event == "created"   ? EventAction::kCreate
                               : event == "removed" ? EventAction::kRemove
                                                    : EventAction::kIgnore;
    EXPECT_TRUE(event == "created" || event == "removed" || event == "ignored") << event;
    EXPECT_EQ(got.action, action) << ActionName(got.action) << " vs " << event;

    // expected.json keeps eventName as written (with any "s3:" prefix) and, for EventBridge, the
    // detail-type; Event.name is normalised onto the S3 names.
    const std::string name = want.at("event_name").get<std::string>();
    if (wrapper == "eventbridge") {
      EXPECT_EQ(got.source, "aws.s3");
      if (name == "Object Created") {
        EXPECT_TRUE(StartsWith(got.name, "ObjectCreated:")) << got.name;
      } else if (name == "Object Deleted") {
        EXPECT_TRUE(StartsWith(got.name, "ObjectRemoved:") ||
                    StartsWith(got.name, "LifecycleExpiration:"))
            << got.name;
      } else {
        EXPECT_EQ(got.name, name);
      }
    } else {
      EXPECT_EQ(got.name, StripS3Prefix(name));
    }

    // version_id: expected.json keeps "" as found; Event maps "" (and absence) to nullopt.
    const json& version = want.at("version_id");
    if (version.is_null() || version.get<std::string>().empty()) {
      EXPECT_EQ(got.version_id, std::nullopt);
    } else {
      EXPECT_EQ(got.version_id, std::optional<std::string>(version.get<std::string>()));
    }

    const json& sequencer = want.at("sequencer");
    EXPECT_EQ(got.sequencer, sequencer.is_null() ? "" : sequencer.get<std::string>());
    const bool aws = got.source == "aws:s3" || got.source == "aws.s3";
    EXPECT_EQ(got.ordered, aws && IsHex(got.sequencer));
    EXPECT_EQ(got.delete_marker, got.action == EventAction::kRemove &&
                                     got.name.find("DeleteMarkerCreated") != std::string::npos);
  }
}

TEST(CorpusTest, NotificationsMatchExpected) {
  const fs::path expected_path = kCorpusDir / "expected.json";
  if (!fs::exists(expected_path)) {
    GTEST_SKIP() << "no notification corpus at " << kCorpusDir << " (checkout without shared/)";
  }
  const json expected = json::parse(ReadFile(expected_path));
  ASSERT_TRUE(expected.is_array());
  ASSERT_FALSE(expected.empty());
  for (const json& entry : expected) CheckEntry(entry);

  // Every document in the directory is covered by expected.json.
  size_t documents = 0;
  for (const auto& f : fs::directory_iterator(kCorpusDir)) {
    const std::string ext = f.path().extension().string();
    if ((ext == ".json" || ext == ".jsonl") && f.path().filename() != "expected.json") ++documents;
  }
  EXPECT_EQ(documents, expected.size());
}

// File names are NNN_<transport>_<Category>_<Type>.json, e.g.
// 031_amqp_ObjectRemoved_DeleteMarkerCreated.json.
std::string EventNameFromFileName(const std::string& stem) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(stem);
  while (std::getline(in, part, '_')) parts.push_back(part);
  if (parts.size() != 4) return "";
  return parts[2] + ":" + parts[3];
}

TEST(CorpusTest, RgwSamples) {
  if (!fs::is_directory(kRgwDir)) {
    GTEST_SKIP() << "no RGW samples at " << kRgwDir << " (checkout without shared/)";
  }
  size_t checked = 0;
  for (const auto& f : fs::recursive_directory_iterator(kRgwDir)) {
    if (!f.is_regular_file() || f.path().extension() != ".json") continue;
    if (f.path().filename() == "summary.json") continue;
    SCOPED_TRACE(f.path().string());
    const std::string name = EventNameFromFileName(f.path().stem().string());
    ASSERT_FALSE(name.empty()) << "unexpected file name";

    const std::string text = ReadFile(f.path());
    Result<ParsedDocument> parsed = ParseNotification(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    ASSERT_EQ(parsed->events.size(), 1u);
    const Event& e = parsed->events[0];
    const json raw = json::parse(text)["Records"][0];
    const json& object = raw["s3"]["object"];

    EXPECT_EQ(e.source, "ceph:s3");
    EXPECT_FALSE(e.ordered);
    EXPECT_EQ(e.name, name);
    const EventAction want = StartsWith(name, "ObjectCreated:")   ? EventAction::kCreate
                             : StartsWith(name, "ObjectRemoved:") ? EventAction::kRemove
                                                                  : EventAction::kIgnore;
    EXPECT_EQ(e.action, want);
    EXPECT_EQ(e.delete_marker, name == "ObjectRemoved:DeleteMarkerCreated");
    EXPECT_EQ(e.bucket, raw["s3"]["bucket"]["name"].get<std::string>());
    EXPECT_EQ(e.key, object["key"].get<std::string>());  // raw, never URL-decoded
    EXPECT_FALSE(e.key.empty());
    const std::string version = object["versionId"].get<std::string>();
    if (version.empty()) {
      EXPECT_EQ(e.version_id, std::nullopt);
    } else {
      EXPECT_EQ(e.version_id, std::optional<std::string>(version));
    }
    if (e.delete_marker) {
      EXPECT_EQ(e.version_id, std::nullopt);  // RGW quirk: the marker's id is missing
    }
    EXPECT_EQ(e.sequencer, object["sequencer"].get<std::string>());
    EXPECT_EQ(e.etag, object["eTag"].get<std::string>());
    EXPECT_EQ(e.size, std::optional<uint64_t>(object["size"].get<uint64_t>()));
    EXPECT_EQ(e.event_time, raw["eventTime"].get<std::string>());
    EXPECT_FALSE(e.event_id.empty());
    EXPECT_EQ(e.metadata.size(), object["metadata"].size());
    EXPECT_EQ(e.tags.size(), object["tags"].size());
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

}  // namespace
}  // namespace ds
