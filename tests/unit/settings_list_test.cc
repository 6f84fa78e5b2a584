// Repeatable settings (Settings::AddList, e.g. --sns-topic-arn): every flag occurrence, else the
// environment split at commas, else the file's array of strings; flags win over the environment,
// which wins over the file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config.h"

namespace ds::app {
namespace {

class SettingsListTest : public ::testing::Test {
 protected:
  void TearDown() override {
    ::unsetenv("DELETE_SYNC_TEST_LIST");
    if (!file_.empty()) std::filesystem::remove(file_);
  }
  // Parses `args` (after the subcommand) and resolves; the list's value, or the error.
  Result<std::vector<std::string>> Resolve(const std::string& args) {
    CLI::App app;
    CLI::App* cmd = app.add_subcommand("cmd");
    Settings settings(cmd);
    std::vector<std::string> list = {"stale"};
    settings.AddList("test-list", &list, "a list");
    app.parse("cmd " + args, false);
    Status s = settings.Resolve();
    if (!s.ok()) return s;
    return list;
  }
  std::string File(const std::string& toml) {
    file_ = (std::filesystem::temp_directory_path() /
             ("ds-settings-list-" + std::to_string(::getpid()) + ".toml"))
                .string();
    std::ofstream(file_) << toml;
    return file_;
  }
  std::string file_;
};

using List = std::vector<std::string>;

TEST_F(SettingsListTest, FlagsEnvironmentAndFileInThatOrder) {
  EXPECT_EQ(*Resolve(""), List{});
  const std::string config = File("test-list = [\"f1\", \"f2\"]\n");
  EXPECT_EQ(*Resolve("--config " + config), (List{"f1", "f2"}));
  ::setenv("DELETE_SYNC_TEST_LIST", " e1 , e2,,", 1);
  EXPECT_EQ(*Resolve("--config " + config), (List{"e1", "e2"}));
  EXPECT_EQ(*Resolve("--config " + config + " --test-list a --test-list b"), (List{"a", "b"}));
}

TEST_F(SettingsListTest, FileTakesOneStringOrAnArrayOfStringsOnly) {
  EXPECT_EQ(*Resolve("--config " + File("test_list = \"one\"\n")), List{"one"});
  Result<List> bad = Resolve("--config " + File("test-list = [\"a\", 2]\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'test-list' must be an array of strings"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(Resolve("--config " + File("test-list = 3\n")).ok());
}

}  // namespace
}  // namespace ds::app
