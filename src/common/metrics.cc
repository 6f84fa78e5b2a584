#include "common/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ds::metrics {
namespace {

bool ValidName(const std::string& n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckNames(const std::string& name, const std::vector<std::string>& labels) {
  bool ok = ValidName(name);
  for (const std::string& l : labels) ok = ok && ValidName(l) && l.find(':') == std::string::npos;
  if (!ok) {
    std::fprintf(stderr, "metrics: invalid metric or label name '%s'\n", name.c_str());
    std::abort();
  }
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (histogram "le"); "" when there are none.
std::string LabelText(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + EscapeLabelValue(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

void Header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the shortest representation that reads back the same.
  for (int prec = 1; prec <= 17; ++prec) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", prec, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<int64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<int64_t> Histogram::BucketCounts() const {
  std::vector<int64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) out[i] = buckets_[i].load();
  return out;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels) {
  CheckNames(name, labels);
  std::lock_guard<std::mutex> l(mu_);
  counters_.push_back(std::make_unique<Family<Counter>>(
      name, help, std::move(labels), [] { return std::make_unique<Counter>(); }));
  Entry e;
  e.kind = Entry::kCounter;
  e.counter = counters_.back().get();
  entries_.push_back(std::move(e));
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels) {
  CheckNames(name, labels);
  std::lock_guard<std::mutex> l(mu_);
  gauges_.push_back(std::make_unique<Family<Gauge>>(name, help, std::move(labels),
                                                    [] { return std::make_unique<Gauge>(); }));
  Entry e;
  e.kind = Entry::kGauge;
  e.gauge = gauges_.back().get();
  entries_.push_back(std::move(e));
  return *gauges_.back();
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> bounds,
                                          std::vector<std::string> labels) {
  CheckNames(name, labels);
  std::lock_guard<std::mutex> l(mu_);
  histograms_.push_back(std::make_unique<Family<Histogram>>(
      name, help, std::move(labels), [bounds] { return std::make_unique<Histogram>(bounds); }));
  Entry e;
  e.kind = Entry::kHistogram;
  e.histogram = histograms_.back().get();
  entries_.push_back(std::move(e));
  return *histograms_.back();
}

void Registry::AddGaugeCallback(const std::string& name, const std::string& help,
                                std::function<double()> sample) {
  CheckNames(name, {});
  std::lock_guard<std::mutex> l(mu_);
  Entry e;
  e.kind = Entry::kCallback;
  e.name = name;
  e.help = help;
  e.sample = std::move(sample);
  entries_.push_back(std::move(e));
}

void Registry::AddCounterCallback(const std::string& name, const std::string& help,
                                  std::function<double()> sample) {
  CheckNames(name, {});
  std::lock_guard<std::mutex> l(mu_);
  Entry e;
  e.kind = Entry::kCallback;
  e.sampled_counter = true;
  e.name = name;
  e.help = help;
  e.sample = std::move(sample);
  entries_.push_back(std::move(e));
}

std::string Registry::Render() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (const Entry& e : entries_) {
    switch (e.kind) {
      case Entry::kCounter:
        Header(out, e.counter->name(), e.counter->help(), "counter");
        e.counter->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
          out += e.counter->name() + LabelText(e.counter->labels(), values) + " " +
                 std::to_string(c.Value()) + "\n";
        });
        break;
      case Entry::kGauge:
        Header(out, e.gauge->name(), e.gauge->help(), "gauge");
        e.gauge->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
          out += e.gauge->name() + LabelText(e.gauge->labels(), values) + " " +
                 FormatValue(g.Value()) + "\n";
        });
        break;
      case Entry::kHistogram: {
        const Family<Histogram>& f = *e.histogram;
        Header(out, f.name(), f.help(), "histogram");
        f.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
          std::vector<int64_t> counts = h.BucketCounts();
          int64_t cumulative = 0;
          for (size_t i = 0; i < counts.size(); ++i) {
            cumulative += counts[i];
            std::string le = i < h.bounds().size() ? FormatValue(h.bounds()[i]) : "+Inf";
            out += f.name() + "_bucket" + LabelText(f.labels(), values, "le", le) + " " +
                   std::to_string(cumulative) + "\n";
          }
          // _count equals the +Inf bucket even if an Observe runs meanwhile.
          out +=
              f.name() + "_sum" + LabelText(f.labels(), values) + " " + FormatValue(h.Sum()) + "\n";
          out += f.name() + "_count" + LabelText(f.labels(), values) + " " +
                 std::to_string(cumulative) + "\n";
        });
        break;
      }
      case Entry::kCallback:
        Header(out, e.name, e.help, e.sampled_counter ? "counter" : "gauge");
        out += e.name + " " + FormatValue(e.sample()) + "\n";
        break;
    }
  }
  return out;
}

}  // namespace ds::metrics
