// delete-sync lambda: the AWS Lambda custom runtime (also chosen when the binary is started
// without a subcommand and AWS_LAMBDA_RUNTIME_API is set, as Lambda starts `bootstrap`).
// Settings come from DELETE_SYNC_* variables; a wrong configuration is reported to
// /runtime/init/error and the process exits. See docs/OPERATIONS.md, "Lambda mode".
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "command.h"
#include "erase_request.h"
#include "reconcile_pass.h"
#include "runtime.h"
#include "transport/lambda_runtime.h"

namespace ds::app {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

class LambdaCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "lambda",
        "Run as an AWS Lambda custom runtime (the Runtime API at $AWS_LAMBDA_RUNTIME_API): "
        "S3 events, SQS batches of them, scheduled reconcile, erasure requests");
    settings_ = std::make_unique<Settings>(cmd_);
    common_.Register(*settings_);
    reconcile_.Register(*settings_);
    settings_->Add("lambda-deadline-margin", &margin_,
                   "start no record or download later than this before the invocation's "
                   "deadline; what is left is reported failed (retried)",
                   "5s");
    return cmd_;
  }

  // A wrong configuration is reported to the Runtime API's init error as well (Lambda shows it in
  // the function's logs and the invoke's error).
  Status Check() override {
    const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
    if (api == nullptr || *api == '\0') {
      return Status::Invalid(
          "AWS_LAMBDA_RUNTIME_API is not set: lambda mode runs only under the Lambda service (or "
          "a Runtime API emulator)");
    }
    signal(SIGPIPE, SIG_IGN);
    client_ = std::make_unique<lambda::RuntimeClient>(api);
    return PostedInitError(CheckSettings());
  }

  Result<RunEnd> Run() override {
    DS_RETURN_IF_ERROR(PostedInitError(Open()));
    lambda::RuntimeClient& client = *client_;
    Status s;
    spdlog::info("delete-sync lambda: cache {}, bucket {}, prefix '{}', state journal {}",
                 common_.cache, common_.bucket, common_.prefix, common_.state_journal);
    s = lambda::RunLoop(client, [this](const lambda::Invocation& inv) {
      // Temp files of downloads that died on any host (their claims expired), every half lease.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sweep_ >= std::chrono::milliseconds(rt_.state->claim_lease_ms() / 2)) {
        last_sweep_ = now;
        SweepStaleTemp(rt_);
      }
      return dispatcher_->Handle(inv);
    });
    if (!s.ok()) return s;
    return RunEnd::kOk;
  }

 private:
  // `s`, posted as the init error when it is one.
  Status PostedInitError(Status s) {
    if (s.ok()) return s;
    Status posted = client_->PostInitError("Runtime.InvalidConfiguration", s.message());
    if (!posted.ok()) std::fprintf(stderr, "delete-sync lambda: %s\n", posted.message().c_str());
    return s;
  }

  // Everything that can be wrong with the configuration, checked before the first invocation.
  Status CheckSettings() {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(common_.log_level));
    if (common_.state_journal.empty()) common_.state_journal = "rollback";
    if (common_.bucket.empty()) {
      return Status::Invalid("DELETE_SYNC_BUCKET is required in lambda mode");
    }
    if (common_.cache.empty()) {
      return Status::Invalid(
          "DELETE_SYNC_CACHE is required in lambda mode (the EFS mount, "
          "e.g. /mnt/data)");
    }
    // Never create the cache here: a missing folder is a file system that is not mounted.
    struct stat st {};
    if (stat(common_.cache.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::Invalid("the cache folder " + common_.cache +
                             " does not exist or is not a folder (is the file system mounted "
                             "at it? check the function's file system configuration)");
    }
    Result<int64_t> margin = ParseDurationMs("lambda-deadline-margin", margin_);
    if (!margin.ok()) return margin.status();
    margin_ms_ = *margin;
    ro_.bucket = common_.bucket;
    ro_.prefix = common_.prefix;
    DS_RETURN_IF_ERROR(reconcile_.Apply(&ro_));
    Result<RuntimeOptions> ro = CheckCommonSettings(common_, /*require_s3=*/true);
    if (!ro.ok()) return ro.status();
    runtime_options_ = std::move(ro).value();
    return Status::Ok();
  }

  // Opens the cache, state and audit log, and makes the dispatcher.
  Status Open() {
    Result<Runtime> rt = OpenRuntime(runtime_options_);
    if (!rt.ok()) return rt.status();
    rt_ = std::move(rt).value();
    // A wrong bucket or credentials are logged at once; invocations still run (removals need
    // no store).
    (void)LogBucketReachability(rt_, common_);

    lambda::DispatchOptions o;
    o.deadline_margin_ms = margin_ms_;
    lambda::DispatchHooks hooks;
    hooks.reconcile = [this](const lambda::Invocation& inv) { return Reconcile(inv); };
    hooks.erase = [this](const lambda::Invocation& inv, const json& request) {
      return Erase(inv, request);
    };
    dispatcher_ = std::make_unique<lambda::Dispatcher>(*rt_.engine, *rt_.state, SystemClock(), o,
                                                       std::move(hooks));
    return Status::Ok();
  }

  // A scheduled event: one reconcile pass, then its downloads until the deadline margin.
  lambda::InvocationResult Reconcile(const lambda::Invocation& inv) {
    if (!dispatcher_->HaveTime(inv.deadline_ms)) {
      return lambda::InvocationResult::Error("DeleteSync.DeadlineExceeded",
                                             "too close to the deadline to start a pass");
    }
    ReconcileOptions o = ro_;
    o.request_id.clear();  // a new one for each pass
    Reconciler reconciler(*rt_.store, *rt_.cache, *rt_.state, *rt_.engine, SystemClock());
    PassRun run = RunReconcilePass(common_.cache, reconciler, o);
    if (!run.lock_status.ok()) {
      // Another pass (another invocation) is running: this one has nothing to add.
      spdlog::warn("lambda: scheduled reconcile skipped: {}", run.lock_status.message());
      return lambda::InvocationResult::Response(Dump(json{{"skipped", run.lock_status.message()}}));
    }
    o.request_id = run.request_id;
    const ReconcileReport& report = run.report;
    const Status& pass = run.status;
    size_t ran = pass.ok() ? dispatcher_->DrainDue(inv.deadline_ms) : 0;
    // Keep the state bounded (--state-horizon): batches of short transactions.
    if (dispatcher_->HaveTime(inv.deadline_ms)) CollectStateOnce(rt_);
    Result<std::pair<int64_t, int64_t>> counts = rt_.state->JobCounts();
    json out = json::parse(ReportJson(o, report, pass, rt_.engine->counters()), nullptr, false);
    if (out.is_discarded()) out = json::object();
    out["downloads_run"] = ran;
    if (counts.ok()) out["downloads_waiting"] = counts->first;
    if (!pass.ok()) {
      spdlog::error("lambda: reconcile failed: {}", pass.message());
      return lambda::InvocationResult::Error("DeleteSync.ReconcileFailed", pass.message());
    }
    spdlog::info("lambda: reconcile: {}", Dump(out));
    return lambda::InvocationResult::Response(Dump(out));
  }

  // {"erase": {...}}: the same request as serve's POST /erase; the answer is the receipt.
  lambda::InvocationResult Erase(const lambda::Invocation&, const json& request) {
    EraseReply r = HandleEraseRequest(rt_, common_.cache, common_.bucket, "this function", request);
    switch (r.end) {
      case EraseEnd::kInvalid:
        return lambda::InvocationResult::Error("DeleteSync.InvalidRequest", r.message);
      case EraseEnd::kFailed:
        return lambda::InvocationResult::Error("DeleteSync.EraseFailed", r.message);
      case EraseEnd::kReceiptNotKept:
        return lambda::InvocationResult::Error("DeleteSync.EraseFailed",
                                               r.message + "; receipt: " + r.receipt_line);
      case EraseEnd::kIncomplete:
        return lambda::InvocationResult::Error(
            "DeleteSync.EraseIncomplete",
            "erasure not verified complete; receipt: " + r.receipt_line);
      case EraseEnd::kDone:
        break;
    }
    return lambda::InvocationResult::Response(r.receipt_line);
  }

  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  ReconcileSettings reconcile_;
  std::string margin_;
  // Checked by Check().
  std::unique_ptr<lambda::RuntimeClient> client_;
  int64_t margin_ms_ = 0;
  RuntimeOptions runtime_options_;
  ReconcileOptions ro_;
  Runtime rt_;
  std::unique_ptr<lambda::Dispatcher> dispatcher_;
  std::chrono::steady_clock::time_point last_sweep_ = std::chrono::steady_clock::now();
};

}  // namespace

std::unique_ptr<Command> MakeLambdaCommand() { return std::make_unique<LambdaCommand>(); }

}  // namespace ds::app
