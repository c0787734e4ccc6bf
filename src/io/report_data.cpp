// The data of `recur report` (see recur/report.hpp): the measures taken from a model's test
// pass (most confused pairs, the misclassified digits shown, the epoch curve), the checks a
// report passes before it is written, and its JSON form.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/json_util.hpp"
#include "recur/error.hpp"
#include "recur/report.hpp"

namespace recur {

// ---- measures ----

std::vector<std::int64_t> confusion_counts(const std::vector<std::int32_t>& labels,
                                           const std::vector<std::int32_t>& predictions, int k) {
  RECUR_CHECK(labels.size() == predictions.size(), "confusion",
              fmt::format("{} labels but {} predictions", labels.size(), predictions.size()));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(k) * k, 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    RECUR_CHECK(labels[i] >= 0 && labels[i] < k && predictions[i] >= 0 && predictions[i] < k,
                "confusion", fmt::format("sample {}: a class outside [0, {})", i, k));
    ++counts[static_cast<std::size_t>(labels[i]) * k + static_cast<std::size_t>(predictions[i])];
  }
  return counts;
}

std::vector<ConfusedPair> most_confused(const std::vector<std::int64_t>& confusion, int classes,
                                        std::size_t top) {
  RECUR_CHECK(classes >= 1 && confusion.size() == static_cast<std::size_t>(classes) * classes,
              "confusion",
              "expected " + std::to_string(classes) + "x" + std::to_string(classes) +
                  " counts, got " + std::to_string(confusion.size()));
  std::vector<ConfusedPair> pairs;
  for (int t = 0; t < classes; ++t)
    for (int p = 0; p < classes; ++p) {
      const std::int64_t n = confusion[static_cast<std::size_t>(t) * classes + p];
      RECUR_CHECK(n >= 0, "confusion", "a count is negative");
      if (t != p && n > 0) pairs.push_back({t, p, n});
    }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const ConfusedPair& a, const ConfusedPair& b) { return a.count > b.count; });
  if (pairs.size() > top) pairs.resize(top);
  return pairs;
}

std::vector<std::int64_t> pick_misclassified(const std::vector<std::int32_t>& labels,
                                             const std::vector<std::int32_t>& predictions,
                                             std::size_t count) {
  std::vector<std::vector<std::int64_t>> by_class;
  const std::size_t n = std::min(labels.size(), predictions.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] == predictions[i] || labels[i] < 0) continue;
    const auto c = static_cast<std::size_t>(labels[i]);
    if (by_class.size() <= c) by_class.resize(c + 1);
    by_class[c].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> out;
  for (std::size_t round = 0; out.size() < count; ++round) {
    bool any = false;
    for (const auto& list : by_class)
      if (round < list.size() && out.size() < count) {
        out.push_back(list[round]);
        any = true;
      }
    if (!any) break;
  }
  return out;
}

std::vector<EpochRecord> epoch_curve_from_metrics(const std::string& jsonl,
                                                  const std::string& source) {
  std::vector<EpochRecord> out;
  double loss_sum = 0;
  int loss_count = 0;
  std::int64_t loss_epoch = -1;
  std::size_t start = 0;
  for (int line = 1; start < jsonl.size(); ++line) {
    std::size_t end = jsonl.find('\n', start);
    if (end == std::string::npos) end = jsonl.size();
    const std::string text = jsonl.substr(start, end - start);
    start = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + ":" + std::to_string(line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      throw Error(where, "not a JSON line");
    }
    RECUR_CHECK(j.is_object() && j.contains("kind") && j.at("kind").is_string(), where,
                "a metrics line needs a \"kind\"");
    const std::string kind = j.at("kind").get<std::string>();
    if (kind != "train" && kind != "validation") continue;
    for (const char* key : {"epoch", "loss"})
      RECUR_CHECK(j.contains(key), where, std::string("'") + key + "' is missing");
    const auto epoch = json_integer<std::int64_t>(j, "epoch", where);
    if (kind == "train") {
      if (epoch != loss_epoch) loss_sum = 0, loss_count = 0, loss_epoch = epoch;
      loss_sum += json_number(j, "loss", where);
      ++loss_count;
    } else {
      RECUR_CHECK(j.contains("accuracy"), where, "'accuracy' is missing");
      EpochRecord r;
      r.epoch = static_cast<int>(epoch + 1);
      r.accuracy = json_number(j, "accuracy", where);
      r.train_loss = loss_epoch == epoch && loss_count > 0
                         ? loss_sum / loss_count
                         : std::numeric_limits<double>::quiet_NaN();
      out.push_back(r);
    }
  }
  return out;
}

// ---- validation ----

void validate_report(const Report& report, const std::string& subject) {
  RECUR_CHECK(!report.models.empty(), subject, "the report has no models");
  std::set<std::string> names;
  for (std::size_t i = 0; i < report.models.size(); ++i) {
    const ReportModel& m = report.models[i];
    const std::string who =
        "model " + std::to_string(i) + (m.name.empty() ? "" : " '" + m.name + "'");
    RECUR_CHECK(!m.name.empty(), subject, who + ": the name is empty");
    RECUR_CHECK(names.insert(m.name).second, subject, who + ": the name appears twice");
    RECUR_CHECK(std::isfinite(m.test_accuracy) && m.test_accuracy >= 0 && m.test_accuracy <= 1,
                subject,
                who + ": test_accuracy must be a fraction in [0, 1], got " +
                    fmt::format("{}", m.test_accuracy));
    const double values[] = {static_cast<double>(m.test_count),
                             static_cast<double>(m.parameters),
                             static_cast<double>(m.checkpoint_bytes),
                             static_cast<double>(m.epochs),
                             m.train_seconds_per_epoch,
                             m.inference_per_second,
                             m.latency_us,
                             static_cast<double>(m.peak_rss_bytes)};
    for (double v : values)
      RECUR_CHECK(std::isfinite(v) && v >= 0, subject,
                  who + ": a measure is negative or not finite");
    for (const ConfusedPair& p : m.confused)
      RECUR_CHECK(p.truth >= 0 && p.predicted >= 0 && p.count >= 0, subject,
                  who + ": a confused pair has a negative class or count");
    for (const EpochRecord& e : m.curve)
      RECUR_CHECK(e.epoch >= 0 && !std::isinf(e.train_loss) && std::isfinite(e.accuracy), subject,
                  who + ": a curve point has a negative epoch or an infinite value");
    for (const MisclassifiedImage& img : m.misclassified) {
      RECUR_CHECK(img.width >= 1 && img.height >= 1 && img.width <= 256 && img.height <= 256,
                  subject, who + ": a misclassified image must be 1..256 pixels on a side");
      RECUR_CHECK(img.pixels.size() == static_cast<std::size_t>(img.width) * img.height, subject,
                  who + ": a misclassified image has " + std::to_string(img.pixels.size()) +
                      " pixels for " + std::to_string(img.width) + "x" +
                      std::to_string(img.height));
      RECUR_CHECK(img.truth >= 0 && img.predicted >= 0, subject,
                  who + ": a misclassified image has a negative class");
    }
    for (const MisclassifiedText& t : m.mistakes) {
      RECUR_CHECK(t.truth >= 0 && t.predicted >= 0, subject,
                  who + ": a mistake has a negative class");
      RECUR_CHECK(std::isfinite(t.confidence) && t.confidence >= 0 && t.confidence <= 1, subject,
                  who + ": a mistake's confidence must be a fraction in [0, 1]");
    }
  }
}

// ---- conclusion ----

// ---- JSON ----

std::string report_to_json(const Report& report) {
  nlohmann::json models = nlohmann::json::array();
  for (const ReportModel& m : report.models) {
    nlohmann::json confused = nlohmann::json::array(), curve = nlohmann::json::array(),
                   images = nlohmann::json::array();
    for (const ConfusedPair& p : m.confused) confused.push_back({p.truth, p.predicted, p.count});
    for (const EpochRecord& e : m.curve)
      curve.push_back({{"epoch", e.epoch},
                       {"train_loss", std::isnan(e.train_loss) ? nlohmann::json(nullptr)
                                                               : nlohmann::json(e.train_loss)},
                       {"accuracy", e.accuracy}});
    for (const MisclassifiedImage& img : m.misclassified)
      images.push_back({{"width", img.width},
                        {"height", img.height},
                        {"truth", img.truth},
                        {"predicted", img.predicted},
                        {"pixels", img.pixels}});
    nlohmann::json mistakes = nlohmann::json::array();
    for (const MisclassifiedText& t : m.mistakes)
      mistakes.push_back({{"truth", t.truth},
                          {"predicted", t.predicted},
                          {"confidence", t.confidence},
                          {"text", t.excerpt}});
    models.push_back({{"name", m.name},
                      {"family", m.family},
                      {"description", m.description},
                      {"group", m.group},
                      {"class_names", m.class_names},
                      {"mistakes", mistakes},
                      {"test_accuracy", m.test_accuracy},
                      {"test_count", m.test_count},
                      {"parameters", m.parameters},
                      {"checkpoint_bytes", m.checkpoint_bytes},
                      {"int8_bytes", m.int8_bytes},
                      {"epochs", m.epochs},
                      {"train_seconds_per_epoch", m.train_seconds_per_epoch},
                      {"inference_per_second", m.inference_per_second},
                      {"latency_us", m.latency_us},
                      {"peak_rss_bytes", m.peak_rss_bytes},
                      {"confused", confused},
                      {"curve", curve},
                      {"misclassified", images}});
  }
  nlohmann::json j = {{"title", report.title},
                      {"data", report.data},
                      {"machine", report.machine},
                      {"models", models}};
  return j.dump(1) + "\n";
}

namespace {

std::string json_string(const nlohmann::json& j, const char* key, const std::string& source,
                        const std::string& fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_string()) throw Error(source, std::string("'") + key + "' must be a string");
  return v.get<std::string>();
}

template <typename Int>
Int optional_integer(const nlohmann::json& j, const char* key, const std::string& source) {
  return j.contains(key) ? json_integer<Int>(j, key, source) : Int{0};
}
double optional_number(const nlohmann::json& j, const char* key, const std::string& source) {
  return j.contains(key) ? json_number(j, key, source) : 0.0;
}

const nlohmann::json& array_at(const nlohmann::json& j, const char* key,
                               const std::string& source) {
  static const nlohmann::json empty = nlohmann::json::array();
  if (!j.contains(key)) return empty;
  const auto& v = j.at(key);
  if (!v.is_array()) throw Error(source, std::string("'") + key + "' must be an array");
  return v;
}

}  // namespace

Report report_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source, std::string("not valid JSON: ") + e.what());
  }
  RECUR_CHECK(j.is_object(), source, "the report must be a JSON object");
  Report r;
  r.title = json_string(j, "title", source, r.title);
  r.data = json_string(j, "data", source, "");
  r.machine = json_string(j, "machine", source, "");
  RECUR_CHECK(j.contains("models"), source, "'models' is missing");
  for (const auto& jm : array_at(j, "models", source)) {
    RECUR_CHECK(jm.is_object(), source, "each entry of 'models' must be an object");
    const std::string where = source + ": model '" + json_string(jm, "name", source, "") + "'";
    ReportModel m;
    m.name = json_string(jm, "name", where, "");
    m.family = json_string(jm, "family", where, "");
    m.description = json_string(jm, "description", where, "");
    m.group = json_string(jm, "group", where, "");
    for (const auto& n : array_at(jm, "class_names", where)) {
      RECUR_CHECK(n.is_string(), where, "'class_names' must be an array of strings");
      m.class_names.push_back(n.get<std::string>());
    }
    for (const auto& t : array_at(jm, "mistakes", where)) {
      RECUR_CHECK(t.is_object(), where, "each 'mistakes' entry must be an object");
      MisclassifiedText mt;
      mt.truth = json_integer<int>(t, "truth", where);
      mt.predicted = json_integer<int>(t, "predicted", where);
      mt.confidence = json_number(t, "confidence", where);
      mt.excerpt = json_string(t, "text", where, "");
      m.mistakes.push_back(std::move(mt));
    }
    RECUR_CHECK(jm.contains("test_accuracy"), where, "'test_accuracy' is missing");
    m.test_accuracy = json_number(jm, "test_accuracy", where);
    m.test_count = optional_integer<std::int64_t>(jm, "test_count", where);
    m.parameters = optional_integer<std::int64_t>(jm, "parameters", where);
    m.checkpoint_bytes = optional_integer<std::int64_t>(jm, "checkpoint_bytes", where);
    m.int8_bytes = optional_integer<std::int64_t>(jm, "int8_bytes", where);
    m.epochs = optional_integer<int>(jm, "epochs", where);
    m.train_seconds_per_epoch = optional_number(jm, "train_seconds_per_epoch", where);
    m.inference_per_second = optional_number(jm, "inference_per_second", where);
    m.latency_us = optional_number(jm, "latency_us", where);
    m.peak_rss_bytes = optional_integer<std::int64_t>(jm, "peak_rss_bytes", where);
    for (const auto& p : array_at(jm, "confused", where)) {
      RECUR_CHECK(p.is_array() && p.size() == 3 && p[0].is_number_integer() &&
                      p[1].is_number_integer() && p[2].is_number_integer(),
                  where, "each 'confused' entry must be [true, predicted, count] integers");
      m.confused.push_back({p[0].get<int>(), p[1].get<int>(), p[2].get<std::int64_t>()});
    }
    for (const auto& e : array_at(jm, "curve", where)) {
      RECUR_CHECK(e.is_object(), where, "each 'curve' entry must be an object");
      const bool no_loss = e.contains("train_loss") && e.at("train_loss").is_null();
      m.curve.push_back(
          {json_integer<int>(e, "epoch", where),
           no_loss ? std::numeric_limits<double>::quiet_NaN() : json_number(e, "train_loss", where),
           json_number(e, "accuracy", where)});
    }
    for (const auto& im : array_at(jm, "misclassified", where)) {
      RECUR_CHECK(im.is_object(), where, "each 'misclassified' entry must be an object");
      MisclassifiedImage img;
      img.width = json_integer<int>(im, "width", where);
      img.height = json_integer<int>(im, "height", where);
      img.truth = json_integer<int>(im, "truth", where);
      img.predicted = json_integer<int>(im, "predicted", where);
      for (const auto& px : array_at(im, "pixels", where)) {
        RECUR_CHECK(
            px.is_number_integer() && px.get<std::int64_t>() >= 0 && px.get<std::int64_t>() <= 255,
            where, "'pixels' must be integers in 0..255");
        img.pixels.push_back(static_cast<std::uint8_t>(px.get<int>()));
      }
      m.misclassified.push_back(std::move(img));
    }
    r.models.push_back(std::move(m));
  }
  validate_report(r, source);
  return r;
}

}  // namespace recur
