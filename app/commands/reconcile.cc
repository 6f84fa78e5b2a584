// delete-sync reconcile: one anti-entropy pass that makes the cache equal to the bucket.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "command.h"
#include "reconcile_pass.h"
#include "runtime.h"
#include "store_wait_logger.h"

namespace ds::app {
namespace {

class ReconcileCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "reconcile",
        "Compare the bucket listing with the cache and make the cache equal to the bucket: "
        "remove orphans, download missing and stale objects");
    settings_ = std::make_unique<Settings>(cmd_);
    common_.Register(*settings_);
    reconcile_.Register(*settings_);
    settings_->AddFlag("dry-run", &dry_run_, "report what would change; change nothing");
    settings_->AddFlag("delete-only", &delete_only_,
                       "only remove orphans (the privacy-critical half); download nothing");
    settings_->AddFlag("json", &json_, "print the report as JSON");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(common_.log_level));
    if (common_.bucket.empty()) {
      return Status::Invalid("--bucket is required (or DELETE_SYNC_BUCKET)");
    }
    ReconcileOptions& o = options_;
    o.bucket = common_.bucket;
    o.prefix = common_.prefix;
    o.dry_run = dry_run_;
    o.delete_only = delete_only_;
    o.request_id = "reconcile-" + FormatUtcMillis(SystemClock().NowMillis());
    DS_RETURN_IF_ERROR(reconcile_.Apply(&o));
    Result<RuntimeOptions> ro = CheckCommonSettings(common_, /*require_s3=*/true);
    if (!ro.ok()) return ro.status();
    runtime_options_ = std::move(ro).value();
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    ReconcileOptions& o = options_;
    Result<Runtime> rt = OpenRuntime(runtime_options_);
    if (!rt.ok()) return rt.status();
    const bool tty = isatty(STDERR_FILENO) && !json_;
    o.store_watch = rt->store_watch.get();
    if (tty) {
      o.progress = [](const ReconcileReport& r) {
        double secs = static_cast<double>(r.duration_ms) / 1000.0;
        std::fprintf(stderr,
                     "\r\033[Kcompared %lld keys (%.0f/s), orphans %lld, missing %lld, "
                     "stale %lld, removed %lld",
                     static_cast<long long>(r.compared),
                     secs > 0 ? static_cast<double>(r.compared) / secs : 0.0,
                     static_cast<long long>(r.orphans + r.untracked_orphans),
                     static_cast<long long>(r.missing), static_cast<long long>(r.stale),
                     static_cast<long long>(r.removed));
        if (!r.waiting.empty()) {
          std::fprintf(stderr, "; waiting on the store: %s, %lld s", r.waiting.front().op.c_str(),
                       static_cast<long long>(r.waiting.front().waited_ms / 1000));
        }
      };
    }
    // A warning line when a request to the store has had no answer for a few seconds (the
    // pass's listing, or the downloads after it), then every 10 s while it waits.
    StoreWaitLogger wait_logger(rt->store_watch.get(), o.request_id);
    Engine& engine = *rt->engine;
    Reconciler reconciler(*rt->store, *rt->cache, *rt->state, engine, SystemClock());
    PassRun run = RunReconcilePass(common_.cache, reconciler, o);
    if (!run.lock_status.ok()) return run.lock_status;
    const ReconcileReport& report = run.report;
    const Status& pass = run.status;
    if (tty) std::fputc('\n', stderr);

    // Download what the pass queued (and anything an earlier run left queued).
    int64_t waiting = 0;
    if (pass.ok() && report.queued > 0) {
      waiting = DrainAllJobs(*rt, o.concurrency);
    }
    // Keep the state bounded (--state-horizon), as serve does hourly; also after a dry run
    // (it changes no copy, only forgets tombstones older than the horizon).
    CollectStateOnce(*rt);
    const EngineCounters& c = engine.counters();
    if (json_) {
      std::cout << ReportJson(o, report, pass, c) << "\n";
    } else {
      PrintHuman(o, report, pass, c);
    }
    if (!pass.ok()) {
      if (json_) return RunEnd::kFailed;  // the report holds the error
      return pass;
    }
    return c.fetch_failed.load() > 0 || waiting != 0 ? RunEnd::kFailed : RunEnd::kOk;
  }

 private:
  void PrintHuman(const ReconcileOptions& o, const ReconcileReport& r, const Status& s,
                  const EngineCounters& c) {
    double secs = static_cast<double>(r.duration_ms) / 1000.0;
    std::cout << "reconcile s3://" << o.bucket << "/" << o.prefix << " -> " << common_.cache
              << (o.dry_run ? " (dry run: nothing changed)" : "")
              << (o.delete_only ? " (delete only)" : "") << (s.ok() ? "" : " FAILED") << "\n";
    std::printf("  compared %lld key(s) in %.2f s: %lld in the bucket, %lld in the cache\n",
                static_cast<long long>(r.compared), secs, static_cast<long long>(r.bucket_objects),
                static_cast<long long>(r.cache_files));
    std::printf(
        "  matching %lld, missing %lld, stale %lld, unverified %lld, orphans %lld, untracked "
        "orphans %lld, refused %lld\n",
        static_cast<long long>(r.matching), static_cast<long long>(r.missing),
        static_cast<long long>(r.stale), static_cast<long long>(r.unverified),
        static_cast<long long>(r.orphans), static_cast<long long>(r.untracked_orphans),
        static_cast<long long>(r.refused));
    if (r.max_delete_refused) {
      std::printf(
          "  REFUSED: %lld removal(s) needed, more than --max-delete %lld; nothing removed\n",
          static_cast<long long>(r.orphans + r.untracked_orphans),
          static_cast<long long>(o.max_delete));
    }
    std::printf("  removed %lld file(s)%s; downloads queued %lld, done %lld, failed %lld\n",
                static_cast<long long>(r.removed),
                r.skipped_changed ? " (some left alone: changed during the pass)" : "",
                static_cast<long long>(r.queued), static_cast<long long>(c.published.load()),
                static_cast<long long>(c.fetch_failed.load()));
    std::printf("  state rows collected (older than --state-horizon) %lld\n",
                static_cast<long long>(c.state_rows_collected.load()));
    for (const std::string& k : r.removed_keys)
      std::cout << "  removed: " << PrintableKey(k) << "\n";
    if (o.dry_run) {
      for (const std::string& k : r.orphan_keys) {
        std::cout << "  would remove: " << PrintableKey(k) << "\n";
      }
    }
  }

  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  ReconcileSettings reconcile_;
  bool dry_run_ = false, delete_only_ = false, json_ = false;
  // Checked by Check().
  ReconcileOptions options_;
  RuntimeOptions runtime_options_;
};

}  // namespace

std::unique_ptr<Command> MakeReconcileCommand() { return std::make_unique<ReconcileCommand>(); }

}  // namespace ds::app
