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

#include "fs/open_holders.h"
#include "runtime.h"
#include "s3/versioned_adapter.h"

namespace ds::app {
namespace {

std::string NewRequestId(int64_t now_ms) {
  std::string t = FormatUtcMillis(now_ms);  // 2024-01-02T03:04:05.678Z
  std::string compact;
  for (char c : t) {
    if (std::isalnum(static_cast<unsigned char>(c))) compact += c;
  }
  std::random_device rd;
  char rnd[9];
  std::snprintf(rnd, sizeof rnd, "%08x", static_cast<unsigned>(rd()));
  return "erase-" + compact + "-" + rnd;
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Io("open " + dir + ": " + std::strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return Status::Io("fsync " + dir + ": " + std::strerror(err));
  return Status::Ok();
}

// Writes `text` to "<dir>/<id>.json" (or "<id>.2.json", ... when a receipt of that request id
// exists: receipts are never overwritten): temp file, fsync, link into place, fsync the folder.
Result<std::string> WriteReceipt(const std::string& dir, const std::string& id,
                                 const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Io("create " + dir + ": " + ec.message());
  std::string tmp = dir + "/." + id + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Io("create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Status::Io("write " + tmp + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Status::Io("fsync " + tmp + ": " + std::strerror(err));
  }
  close(fd);
  std::string final_path;
  for (int n = 1; n < 10000; ++n) {
    final_path = dir + "/" + id + (n == 1 ? "" : "." + std::to_string(n)) + ".json";
    if (link(tmp.c_str(), final_path.c_str()) == 0) break;
    if (errno != EEXIST) {
      int err = errno;
      unlink(tmp.c_str());
      return Status::Io("link " + final_path + ": " + std::strerror(err));
    }
    final_path.clear();
  }
  unlink(tmp.c_str());
  if (final_path.empty()) return Status::Io("too many receipts for request id " + id);
  DS_RETURN_IF_ERROR(SyncDir(dir));
  return final_path;
}

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

  int Run() override {
    Status s = settings_->Resolve();
    if (s.ok()) s = SetupLogging(common_.log_level);
    if (!s.ok()) return Fail(s, kExitUsage);
    EraseRequest req;
    req.bucket = common_.bucket;
    req.keys = keys_;
    // The mirror prefix from the environment or a config file is not an erase selector.
    if (cmd_->get_option("--prefix")->count() > 0) req.prefix = common_.prefix;
    if (!subject_.empty()) req.subject = subject_;
    req.scan = scan_;
    req.request_id = request_id_.empty() ? NewRequestId(SystemClock().NowMillis()) : request_id_;
    s = ValidateEraseRequest(req);
    if (!s.ok()) return Fail(s, kExitUsage);

    Result<Runtime> rt = OpenRuntime(common_, /*require_s3=*/true);
    if (!rt.ok()) {
      return Fail(rt.status(),
                  rt.status().code() == Code::kInvalidArgument ? kExitUsage : kExitFailed);
    }
    char resolved[PATH_MAX];
    if (realpath(common_.cache.c_str(), resolved) == nullptr) {
      return Fail(Status::Io("realpath " + common_.cache + ": " + std::strerror(errno)),
                  kExitFailed);
    }
    S3VersionedStore versions(*rt->s3);
    EraseDeps deps;
    deps.versions = &versions;
    deps.store = rt->s3.get();
    deps.cache = rt->cache.get();
    deps.state = rt->state.get();
    deps.engine = rt->engine.get();
    deps.clock = &SystemClock();
    deps.limits = rt->engine->options().limits;
    deps.cache_root = resolved;
    deps.subject_field = rt->engine->options().subject_field;
    if (rt->audit) {
      AuditLog* log = rt->audit.get();
      deps.audit = [log](const std::string& type,
                         const nlohmann::json& fields) -> Result<AuditRef> {
        Result<AuditPosition> p = log->Append(type, fields);
        if (!p.ok()) return p.status();
        return AuditRef{p->seq, p->hash};
      };
    }
    std::string root = resolved;
    deps.scan_holders = [root](std::vector<OpenHolder>* h, bool* complete) {
      return ScanOpenHolders(root, h, complete);
    };

    Result<EraseOutcome> out = RunErase(req, deps);
    if (!out.ok()) return Fail(out.status(), kExitFailed);
    std::string dir =
        receipts_dir_.empty() ? common_.cache + "/" + kReservedDir + "/receipts" : receipts_dir_;
    std::string text = out->receipt.dump(2);
    std::cout << out->receipt.dump() << "\n" << std::flush;
    Result<std::string> written = WriteReceipt(dir, req.request_id, text + "\n");
    if (!written.ok()) {
      Fail(
          Status(written.status().code(), "cannot keep the receipt: " + written.status().message()),
          kExitFailed);
      return kExitFailed;
    }
    spdlog::info("erase {}: receipt {}; {}", req.request_id, *written,
                 out->ok() ? "verified gone" : "NOT everything verified gone");
    return out->ok() ? kExitOk : kExitFailed;
  }

 private:
  static int Fail(const Status& s, int code) { return app::Fail("erase", s, code); }

  CLI::App* cmd_ = nullptr;
  std::unique_ptr<Settings> settings_;
  CommonSettings common_;
  std::vector<std::string> keys_;
  std::string subject_, request_id_, receipts_dir_;
  bool scan_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeEraseCommand() { return std::make_unique<EraseCommand>(); }

}  // namespace ds::app
