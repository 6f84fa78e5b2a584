// A small Prometheus metrics registry without I/O: counters, gauges and fixed-bucket
// histograms, with or without labels, rendered in the text exposition format 0.0.4.
//
// Updating a metric is lock-free (atomics); creating a labelled child takes the family's mutex
// once. Children live as long as the registry, so references to them may be kept.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ds::metrics {

class Counter {
 public:
  void Inc(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Buckets are upper bounds, ascending; +Inf is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket counts (not cumulative); the last one is the +Inf bucket.
  std::vector<int64_t> BucketCounts() const;
  int64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<int64_t> count_{0};
  std::atomic<double> sum_{0};
};

// A metric name and its label names; children per label values.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        make_(std::move(make)) {}
  // The child for these label values (as many as label names; created on first use).
  T& With(const std::vector<std::string>& values) {
    std::lock_guard<std::mutex> l(mu_);
    std::unique_ptr<T>& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labels() const { return labels_; }
  // Calls fn(label values, child) in label order.
  void ForEach(const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [values, child] : children_) fn(values, *child);
  }

 private:
  const std::string name_, help_;
  const std::vector<std::string> labels_;
  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

class Registry {
 public:
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (checked: a bad name aborts, it is a bug).
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds, std::vector<std::string> labels = {});
  // A gauge sampled when rendering (e.g. a queue length read from the state store).
  void AddGaugeCallback(const std::string& name, const std::string& help,
                        std::function<double()> sample);
  // A counter sampled when rendering (a total kept elsewhere, e.g. by the state store); the
  // sample must never decrease.
  void AddCounterCallback(const std::string& name, const std::string& help,
                          std::function<double()> sample);

  // The text exposition format 0.0.4, families in registration order.
  std::string Render() const;

 private:
  struct Entry {
    enum Kind { kCounter, kGauge, kHistogram, kCallback } kind = kCounter;
    Family<Counter>* counter = nullptr;
    Family<Gauge>* gauge = nullptr;
    Family<Histogram>* histogram = nullptr;
    std::string name, help;
    std::function<double()> sample;
    bool sampled_counter = false;  // kCallback rendered as a counter
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
};

// Prometheus number formatting: integers without a fraction, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);
// Escapes a label value (\\, \", \n).
std::string EscapeLabelValue(const std::string& v);

}  // namespace ds::metrics
