// delete-sync apply: offline replay of notification documents with the same engine.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "command.h"
#include "core/parse_events.h"
#include "runtime.h"

namespace ds::app {
namespace {

struct Tally {
  int64_t documents = 0, events = 0, malformed = 0, test_events = 0, non_s3 = 0;
  nlohmann::json errors = nlohmann::json::array();
};

class ApplyCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "apply",
        "Apply notification documents from a file (one per line, or one whole document) "
        "with the same engine as serve, then print a summary");
    settings_ = std::make_unique<Settings>(cmd_);
    common_.Register(*settings_);
    settings_->Add("events", &events_, "file of notification documents; '-' reads stdin");
    settings_->Add("fetch-concurrency", &fetch_concurrency_,
                   "parallel downloads of the objects events create", "4");
    settings_->Add("batch", &batch_,
                   "events applied per group commit (one state transaction, one fsync per "
                   "folder, one audit append); 1 makes each event durable on its own",
                   "512");
    settings_->AddFlag("json", &json_, "print the summary as JSON");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(common_.log_level));
    if (events_.empty()) return Status::Invalid("--events FILE is required ('-' for stdin)");
    Result<int64_t> workers = ParseInt("fetch-concurrency", fetch_concurrency_, 1, 256);
    if (!workers.ok()) return workers.status();
    workers_ = *workers;
    Result<int64_t> batch = ParseInt("batch", batch_, 1, 10000);
    if (!batch.ok()) return batch.status();
    batch_size_ = static_cast<size_t>(*batch);
    Result<RuntimeOptions> ro = CheckCommonSettings(common_, /*require_s3=*/false);
    if (!ro.ok()) return ro.status();
    runtime_options_ = std::move(ro).value();
    // Read in blocks (an istreambuf_iterator loop costs a call per byte).
    auto read_all = [this](std::istream& in) {
      std::ostringstream buf;
      buf << in.rdbuf();
      input_ = std::move(buf).str();
    };
    if (events_ == "-") {
      read_all(std::cin);
    } else {
      std::ifstream in(events_, std::ios::binary);
      if (!in) return Status::NotFound("cannot read --events file " + events_);
      read_all(in);
    }
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    const std::string& input = input_;
    // One whole document, or one document per line.
    if (input.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Status::Invalid("no notification documents in " + events_);
    }
    Result<Runtime> rt = OpenRuntime(runtime_options_);
    if (!rt.ok()) return rt.status();
    Engine& engine = *rt->engine;
    Tally tally;

    // Events wait here for their group commit (--batch), in input order.
    std::vector<Event> pending;
    std::vector<std::string> pending_where;
    auto flush = [&] {
      if (pending.empty()) return;
      const std::vector<ApplyResult> results = engine.ApplyAll(pending);
      for (size_t i = 0; i < pending.size(); ++i) {
        if (results[i].outcome == Outcome::kFailed) {
          tally.errors.push_back(pending_where[i] + ": " + PrintableKey(pending[i].key) + ": " +
                                 results[i].message);
        }
      }
      pending.clear();
      pending_where.clear();
    };

    auto apply_parsed = [&](const Result<ParsedDocument>& parsed, const std::string& where) {
      ++tally.documents;
      if (!parsed.ok()) {
        ++tally.malformed;
        std::string msg = where + ": " + parsed.status().message();
        spdlog::error("malformed notification at {}", msg);
        tally.errors.push_back(msg);
        return;
      }
      tally.test_events += static_cast<int64_t>(parsed->test_events);
      tally.non_s3 += static_cast<int64_t>(parsed->non_s3_messages);
      for (const Event& ev : parsed->events) {
        ++tally.events;
        pending.push_back(ev);
        pending_where.push_back(where);
        if (pending.size() >= batch_size_) flush();
      }
    };

    // Parsed once: as a whole document if it is one, else line by line.
    Result<ParsedDocument> whole = ParseNotification(input);
    if (whole.ok()) {
      apply_parsed(whole, events_ == "-" ? "stdin" : events_);
    } else {
      std::istringstream lines(input);
      std::string line;
      int n = 0;
      while (std::getline(lines, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        apply_parsed(ParseNotification(line), "line " + std::to_string(n));
      }
    }

    flush();

    // Run the downloads the events queued (and any left by an earlier run), waiting for
    // retries that are due later.
    const int64_t waiting = DrainAllJobs(*rt, static_cast<int>(workers_));
    // Keep the state bounded (--state-horizon), as serve does hourly.
    CollectStateOnce(*rt);

    const EngineCounters& c = engine.counters();
    int64_t applied = c.removed + c.absent + c.published + c.gone + c.discarded;
    int64_t ignored =
        c.ignored + c.out_of_scope + c.stale + c.other_version + tally.test_events + tally.non_s3;
    int64_t failed = c.failed + c.fetch_failed + tally.malformed;
    if (json_) {
      nlohmann::json out = {
          {"documents", tally.documents}, {"events", tally.events},
          {"applied", applied},           {"ignored", ignored},
          {"refused", c.refused.load()},  {"failed", failed},
          {"removed", c.removed.load()},  {"downloaded", c.published.load()},
          {"downloads_waiting", waiting}, {"stale", c.stale.load()},
          {"malformed", tally.malformed}, {"refusals", engine.RefusalCounts()},
          {"errors", tally.errors},       {"state_rows_collected", c.state_rows_collected.load()}};
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << "applied " << applied << ", ignored " << ignored << ", refused "
                << c.refused.load() << ", failed " << failed << "\n";
      std::cout << "  " << tally.documents << " document(s), " << tally.events
                << " event(s): removed " << c.removed.load() << ", already absent "
                << c.absent.load() << ", downloaded " << c.published.load() << ", stale "
                << c.stale.load() << "\n";
      for (const auto& [reason, n] : engine.RefusalCounts()) {
        std::cout << "  refused " << n << " key(s): " << reason << "\n";
      }
      for (const auto& e : tally.errors) std::cout << "  error: " << e.get<std::string>() << "\n";
      if (waiting > 0) {
        std::cout << "  " << waiting
                  << " download(s) still waiting (retried by serve or the next run)\n";
      }
    }
    // Downloads still waiting (being retried) are not done: the run does not succeed.
    return failed > 0 || waiting != 0 ? RunEnd::kFailed : RunEnd::kOk;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  std::string events_, fetch_concurrency_, batch_;
  bool json_ = false;
  // Checked by Check().
  int64_t workers_ = 4;
  size_t batch_size_ = 512;
  RuntimeOptions runtime_options_;
  std::string input_;  // the documents read from --events
};

}  // namespace

std::unique_ptr<Command> MakeApplyCommand() { return std::make_unique<ApplyCommand>(); }

}  // namespace ds::app
