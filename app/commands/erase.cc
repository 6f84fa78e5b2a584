// delete-sync erase: removes every version of some keys from the bucket and every copy from
// the cache, verifies, and writes a receipt (docs/ERASURE.md).
#include "core/erase.h"

#include <fcntl.h>
#include <limits.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>

#include "command.h"
#include "core/cache_layout.h"
#include "erase_request.h"
#include "runtime.h"

namespace ds::app {
namespace {

class EraseCommand : public Command {
 public:
  CLI::App* Register(CLI::App& parent) override {
    cmd_ = parent.add_subcommand(
        "erase",
        "Erase keys for good: delete every version from the bucket, remove the cache copies, "
        "verify both and write a receipt (JSON on stdout and in the receipts folder)");
    settings_ = std::make_unique<Settings>(cmd_);
    common_.Register(*settings_);  // --prefix here selects what to erase (command line only)
    cmd_->add_option("--key", keys_, "a key to erase (repeatable)");
    settings_->Add("subject", &subject_,
                   "erase every key whose --subject-field names this data subject");
    settings_->AddFlag("scan", &scan_,
                       "with --subject: also list the bucket and read each object's metadata");
    settings_->Add("request-id", &request_id_,
                   "id of this erasure (A-Z a-z 0-9 . _ -) [default: generated]");
    settings_->Add("receipts-dir", &receipts_dir_,
                   "where receipts are kept [default: <cache>/.delete-sync/receipts]");
    return cmd_;
  }

  Status Check() override {
    DS_RETURN_IF_ERROR(settings_->Resolve());
    DS_RETURN_IF_ERROR(SetupLogging(common_.log_level));
    EraseRequest& req = req_;
    req.bucket = common_.bucket;
    req.keys = keys_;
    // The mirror prefix from the environment or a config file is not an erase selector.
    if (cmd_->get_option("--prefix")->count() > 0) req.prefix = common_.prefix;
    if (!subject_.empty()) req.subject = subject_;
    req.scan = scan_;
    req.request_id = request_id_.empty() ? NewRequestId(SystemClock().NowMillis()) : request_id_;
    DS_RETURN_IF_ERROR(ValidateEraseRequest(req));
    Result<RuntimeOptions> ro = CheckCommonSettings(common_, /*require_s3=*/true);
    if (!ro.ok()) return ro.status();
    runtime_options_ = std::move(ro).value();
    return Status::Ok();
  }

  Result<RunEnd> Run() override {
    const EraseRequest& req = req_;
    Result<Runtime> rt = OpenRuntime(runtime_options_);
    if (!rt.ok()) return rt.status();
    std::string dir =
        receipts_dir_.empty() ? CacheLayout(common_.cache).ReceiptsDir() : receipts_dir_;
    Result<ErasureResult> out = ExecuteErase(*rt, common_.cache, dir, req);
    if (!out.ok()) return out.status();
    std::cout << out->receipt_line << "\n" << std::flush;
    if (!out->receipt_saved.ok()) {
      return Status(out->receipt_saved.code(),
                    "cannot keep the receipt: " + out->receipt_saved.message());
    }
    return out->ok ? RunEnd::kOk : RunEnd::kFailed;
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  std::vector<std::string> keys_;
  std::string subject_, request_id_, receipts_dir_;
  bool scan_ = false;
  // Checked by Check().
  EraseRequest req_;
  RuntimeOptions runtime_options_;
};

}  // namespace

std::unique_ptr<Command> MakeEraseCommand() { return std::make_unique<EraseCommand>(); }

}  // namespace ds::app
