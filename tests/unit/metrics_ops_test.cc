// OpsMetrics fed by the real engine (with fakes): what each outcome counts, the delay from
// eventTime, removals by cause, the log line per event.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "core/ops_metrics.h"
#include "fakes/fakes.h"

namespace ds {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

class OpsMetricsTest : public ::testing::Test {
 protected:
  OpsMetricsTest()
      : metrics_(clock_, [this](int level, const std::string& msg, const LogFields& f) {
          lines_.push_back({level, msg, f});
        }) {
    EngineOptions o;
    o.bucket = "b";
    o.resync_after_removal = false;
    engine_ = std::make_unique<Engine>(&store_, cache_, state_, clock_, o);
    engine_->set_observer(&metrics_);
  }
  Event Ev(EventAction a, const std::string& name, const std::string& key,
           const std::string& time) {
    Event ev;
    ev.action = a;
    ev.name = name;
    ev.source = "ceph:s3";
    ev.bucket = "b";
    ev.key = key;
    ev.event_time = time;
    ev.event_id = "id-" + key;
    return ev;
  }
  std::string Field(size_t line, const std::string& name) {
    for (const auto& [k, v] : lines_.at(line).fields) {
      if (k == name) return v;
    }
    return "<none>";
  }
  struct Line {
    int level;
    std::string msg;
    LogFields fields;
  };
  fakes::FakeObjectStore store_;
  fakes::FakeCacheFs cache_;
  fakes::FakeStateStore state_;
  fakes::FakeClock clock_;
  std::vector<Line> lines_;
  OpsMetrics metrics_;
  std::unique_ptr<Engine> engine_;
};

TEST(ParseEventTimeTest, Formats) {
  EXPECT_EQ(ParseEventTimeMillis("1970-01-01T00:00:01.000Z"), 1000);
  EXPECT_EQ(ParseEventTimeMillis("2023-11-14T22:13:20.5Z"), 1700000000500);
  EXPECT_EQ(ParseEventTimeMillis("2023-11-14T22:13:20.123456Z"), 1700000000123);
  EXPECT_EQ(ParseEventTimeMillis("2023-11-14T22:13:20Z"), 1700000000000);
  EXPECT_EQ(ParseEventTimeMillis("2023-11-14T22:13:20+00:00"), 1700000000000);
  EXPECT_FALSE(ParseEventTimeMillis(""));
  EXPECT_FALSE(ParseEventTimeMillis("2023-11-14 nonsense"));
  EXPECT_FALSE(ParseEventTimeMillis("2023-13-14T22:13:20Z"));
  EXPECT_FALSE(ParseEventTimeMillis("2023-11-14T22:13:20+02:00"));  // not UTC: not guessed
  EXPECT_FALSE(ParseEventTimeMillis("2023-11-14T22:13:20.Z"));
}

TEST_F(OpsMetricsTest, RemovalCountsByOutcomeCauseAndObservesTheDelay) {
  cache_.PutFile("k1", "data");
  // The clock is 1.7e12 ms = 2023-11-14T22:13:20Z; the events happened 0.3 s and 20 s earlier.
  ApplyResult r = engine_->Apply(
      Ev(EventAction::kRemove, "ObjectRemoved:Delete", "k1", "2023-11-14T22:13:19.700Z"));
  ASSERT_EQ(r.outcome, Outcome::kRemoved);
  engine_->Apply(Ev(EventAction::kRemove, "ObjectRemoved:Delete", "k2", "2023-11-14T22:13:00Z"));
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text,
                  "delete_sync_events_received_total{source=\"ceph:s3\",type=\"ObjectRemoved:"
                  "Delete\"} 2"))
      << text;
  EXPECT_TRUE(Has(text, "delete_sync_events_applied_total{outcome=\"removed\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_events_applied_total{outcome=\"absent\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_removals_total{cause=\"event\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_bucket{action=\"remove\",le=\"0.25\"} 0"))
      << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_bucket{action=\"remove\",le=\"0.5\"} 1"))
      << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_bucket{action=\"remove\",le=\"30\"} 2"))
      << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_sum{action=\"remove\"} 20.3")) << text;
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0].msg, "event");
  EXPECT_EQ(lines_[0].level, spdlog::level::info);
  EXPECT_EQ(Field(0, "key"), "k1");
  EXPECT_EQ(Field(0, "action"), "remove");
  EXPECT_EQ(Field(0, "outcome"), "removed");
  EXPECT_EQ(Field(0, "delay_s"), "0.300");
  EXPECT_EQ(Field(1, "outcome"), "absent");
}

TEST_F(OpsMetricsTest, EventWithoutUsableTimeIsCountedButNotTimed) {
  engine_->Apply(Ev(EventAction::kRemove, "ObjectRemoved:Delete", "k", "yesterday"));
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_events_applied_total{outcome=\"absent\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_count{action=\"remove\"} 0")) << text;
  EXPECT_EQ(Field(0, "delay_s"), "<none>");
}

TEST_F(OpsMetricsTest, RefusedKeysByReasonAndRemembered) {
  engine_->Apply(Ev(EventAction::kRemove, "ObjectRemoved:Delete", "../x", ""));
  engine_->Apply(Ev(EventAction::kCreate, "ObjectCreated:Put", "a/./b", ""));
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_refused_keys_total{reason=\"dot-segment\"} 2")) << text;
  ASSERT_EQ(metrics_.RecentRefusals().size(), 2u);
  EXPECT_EQ(metrics_.RecentRefusals()[0].key, "a/./b");  // newest first
  EXPECT_EQ(lines_.at(0).level, spdlog::level::warn);
  EXPECT_EQ(Field(0, "outcome"), "refused");
  EXPECT_NE(Field(0, "error"), "<none>");
}

TEST_F(OpsMetricsTest, IgnoredAndOutOfScopeAreCountedByReason) {
  engine_->Apply(Ev(EventAction::kIgnore, "ObjectRestore:Post", "k", ""));
  Event other = Ev(EventAction::kRemove, "ObjectRemoved:Delete", "k", "");
  other.bucket = "another";
  engine_->Apply(other);
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_events_ignored_total{reason=\"ignored\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_events_ignored_total{reason=\"out-of-scope\"} 1")) << text;
}

TEST_F(OpsMetricsTest, FailedRemovalIsCountedAndLoggedAsError) {
  cache_.PutFile("k", "x");
  cache_.fail_remove = Status::Io("unlink k: Input/output error");
  ApplyResult r = engine_->Apply(Ev(EventAction::kRemove, "ObjectRemoved:Delete", "k", ""));
  ASSERT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_TRUE(Has(metrics_.Render(), "delete_sync_events_failed_total{action=\"remove\"} 1"));
  EXPECT_EQ(lines_.at(0).level, spdlog::level::err);
}

TEST_F(OpsMetricsTest, CreationDelayIsObservedWhenTheDownloadIsPublished) {
  store_.Put("b", "new", "hello");
  engine_->Apply(Ev(EventAction::kCreate, "ObjectCreated:Put", "new", "2023-11-14T22:13:19Z"));
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_events_applied_total{outcome=\"queued\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_count{action=\"create\"} 0")) << text;
  clock_.Advance(1000);
  EXPECT_EQ(engine_->DrainJobs(), 1u);
  text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_downloads_total{outcome=\"published\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_sum{action=\"create\"} 2")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_event_delay_seconds_count{action=\"create\"} 1")) << text;
}

TEST_F(OpsMetricsTest, ReconcileRunsAndHistory) {
  ReconcileReport rep;
  rep.missing = 2;
  rep.orphans = 1;
  rep.removed = 1;
  rep.queued = 2;
  rep.started_ms = clock_.now_;
  metrics_.OnReconcile(rep, Status::Ok());
  metrics_.OnReconcile(ReconcileReport{}, Status::Unavailable("listing failed"));
  std::string text = metrics_.Render();
  EXPECT_TRUE(Has(text, "delete_sync_reconcile_runs_total{result=\"ok\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_reconcile_runs_total{result=\"failed\"} 1")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_reconcile_keys_total{kind=\"missing\"} 2")) << text;
  EXPECT_TRUE(Has(text, "delete_sync_reconcile_last_success_timestamp_seconds 1700000000")) << text;
  ASSERT_EQ(metrics_.ReconcileHistory().size(), 2u);
  EXPECT_FALSE(metrics_.ReconcileHistory()[0].ok);
  EXPECT_EQ(metrics_.ReconcileHistory()[0].error, "listing failed");
}

}  // namespace
}  // namespace ds
