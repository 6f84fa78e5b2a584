// The metrics registry: counting (also from many threads) and the text exposition format.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ds::metrics {
namespace {

TEST(MetricsRegistryTest, RendersCountersWithHelpTypeAndLabels) {
  Registry r;
  auto& c = r.AddCounter("ds_things_total", "Things seen", {"kind"});
  c.With({"a"}).Inc();
  c.With({"a"}).Inc(2);
  c.With({"b"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP ds_things_total Things seen\n"
            "# TYPE ds_things_total counter\n"
            "ds_things_total{kind=\"a\"} 3\n"
            "ds_things_total{kind=\"b\"} 1\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  Registry r;
  auto& c = r.AddCounter("ds_x_total", "line one\nback\\slash", {"key"});
  c.With({"a\"b\\c\nd"}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP ds_x_total line one\\nback\\\\slash\n"
            "# TYPE ds_x_total counter\n"
            "ds_x_total{key=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("ds_delay_seconds", "Delay", {0.1, 1}, {"action"});
  Histogram& rm = h.With({"remove"});
  rm.Observe(0.05);
  rm.Observe(0.1);  // on the bound: counted in that bucket (le = less or equal)
  rm.Observe(0.5);
  rm.Observe(7);
  EXPECT_EQ(rm.BucketCounts(), (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(r.Render(),
            "# HELP ds_delay_seconds Delay\n"
            "# TYPE ds_delay_seconds histogram\n"
            "ds_delay_seconds_bucket{action=\"remove\",le=\"0.1\"} 2\n"
            "ds_delay_seconds_bucket{action=\"remove\",le=\"1\"} 3\n"
            "ds_delay_seconds_bucket{action=\"remove\",le=\"+Inf\"} 4\n"
            "ds_delay_seconds_sum{action=\"remove\"} 7.65\n"
            "ds_delay_seconds_count{action=\"remove\"} 4\n");
}

TEST(MetricsRegistryTest, GaugesAndSampledGaugesWithoutLabels) {
  Registry r;
  auto& g = r.AddGauge("ds_level", "A level");
  g.With({}).Set(2.5);
  int calls = 0;
  r.AddGaugeCallback("ds_sampled", "Sampled", [&] { return static_cast<double>(++calls); });
  EXPECT_EQ(r.Render(),
            "# HELP ds_level A level\n# TYPE ds_level gauge\nds_level 2.5\n"
            "# HELP ds_sampled Sampled\n# TYPE ds_sampled gauge\nds_sampled 1\n");
  EXPECT_NE(r.Render().find("ds_sampled 2\n"), std::string::npos);
}

TEST(MetricsRegistryTest, FamiliesWithoutChildrenRenderOnlyTheirHeader) {
  Registry r;
  r.AddCounter("ds_none_total", "Nothing yet", {"x"});
  EXPECT_EQ(r.Render(), "# HELP ds_none_total Nothing yet\n# TYPE ds_none_total counter\n");
}

TEST(MetricsRegistryTest, CountsEveryIncrementFromManyThreads) {
  Registry r;
  auto& c = r.AddCounter("ds_n_total", "n", {"t"});
  auto& h = r.AddHistogram("ds_h", "h", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.With({t % 2 == 0 ? "even" : "odd"}).Inc();
        h.With({}).Observe(i % 2 == 0 ? 0.5 : 2);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.With({"even"}).Value(), 40000);
  EXPECT_EQ(c.With({"odd"}).Value(), 40000);
  EXPECT_EQ(h.With({}).Count(), 80000);
  EXPECT_EQ(h.With({}).BucketCounts(), (std::vector<int64_t>{40000, 40000}));
  EXPECT_DOUBLE_EQ(h.With({}).Sum(), 40000 * 0.5 + 40000 * 2.0);
}

TEST(MetricsFormatTest, Values) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(-2), "-2");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1795586413.393), "1795586413.393");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(MetricsRegistryDeathTest, InvalidNameIsABug) {
  Registry r;
  EXPECT_DEATH(r.AddCounter("bad-name", "x"), "invalid metric");
  EXPECT_DEATH(r.AddCounter("ok_name", "x", {"bad label"}), "invalid metric");
}

}  // namespace
}  // namespace ds::metrics
