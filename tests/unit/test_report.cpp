// The report writer (src/io/report.cpp): the conclusion follows the numbers it is given (swap
// two models' measures and the winner it names changes), the page is self-contained (no script,
// nothing fetched, digits as PNG data: URLs that decode back to their pixels), the table has a
// row per model with the best values marked, the files are written atomically, and the JSON form
// round-trips and refuses bad input with messages naming the file and the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/image.hpp"
#include "recur/report.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

ReportModel model(const std::string& name, const std::string& family, double acc,
                  std::int64_t params, double latency_us, double per_s, double epoch_s,
                  std::int64_t rss) {
  ReportModel m;
  m.name = name;
  m.family = family;
  m.test_accuracy = acc;
  m.test_count = 10000;
  m.parameters = params;
  m.checkpoint_bytes = params * 4 + 2000;
  m.int8_bytes = params + 400;
  m.epochs = 3;
  m.train_seconds_per_epoch = epoch_s;
  m.inference_per_second = per_s;
  m.latency_us = latency_us;
  m.peak_rss_bytes = rss;
  m.confused = {{4, 9, 12}, {7, 2, 8}};
  for (int e = 1; e <= 3; ++e) m.curve.push_back({e, 0.5 / e, acc - 0.01 / e});
  MisclassifiedImage img;
  img.width = 28;
  img.height = 28;
  img.pixels.assign(28 * 28, 0);
  for (int i = 5; i < 23; ++i) img.pixels[static_cast<std::size_t>(i) * 28 + 14] = 255;
  img.truth = 4;
  img.predicted = 9;
  m.misclassified = {img};
  return m;
}

std::vector<ReportModel> fixed_models() {
  return {model("lstm", "LSTM", 0.9899, 69898, 122, 54881, 2.6, 78000000),
          model("gru", "GRU", 0.9896, 52874, 91, 68917, 2.2, 83000000),
          model("rnn", "RNN", 0.9757, 18058, 31, 218419, 1.9, 64000000),
          model("cnn", "CNN", 0.9912, 61706, 45, 90000, 3.1, 95000000),
          model("mlp", "MLP", 0.9810, 235146, 20, 400000, 0.9, 70000000)};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// The conclusion's line that starts with `axis` ("" when none).
std::string line(const std::string& conclusion, const std::string& axis) {
  for (const std::string& l : lines_of(conclusion))
    if (l.rfind(axis + ":", 0) == 0) return l;
  return "";
}

TEST(ReportConclusion, NamesEachAxisWinnerAndMargin) {
  const std::string c = report_conclusion(fixed_models());
  EXPECT_EQ(line(c, "Accuracy"),
            "Accuracy: cnn is the most accurate at 99.12%, 0.13 points ahead of lstm (98.99%): "
            "88 errors against 101, 13% fewer; rnn comes last at 97.57%.");
  EXPECT_EQ(line(c, "Size"),
            "Size: rnn is the smallest with 18,058 parameters, 2.9x fewer than gru (52,874); mlp "
            "comes last with 235,146.");
  EXPECT_EQ(line(c, "Training time"),
            "Training time: mlp trains fastest at 0.90 s per epoch, 2.1x faster than rnn (1.90 s); "
            "cnn comes last with 3.10 s.");
  EXPECT_EQ(line(c, "Throughput"),
            "Throughput: mlp classifies the most at batch 1000, 400,000 samples/s, 1.8x as many as "
            "rnn (218,419 samples/s); lstm comes last with 54,881 samples/s.");
  EXPECT_EQ(line(c, "Latency"),
            "Latency: mlp answers one sample fastest, in 20.0 us, 1.6x faster than rnn (31.0 us); "
            "lstm comes last with 122 us.");
  EXPECT_EQ(line(c, "Memory"),
            "Memory: rnn trains in the least memory, 64.0 MB peak RSS, 1.1x less than mlp (70.0 "
            "MB); cnn comes last with 95.0 MB.");
  EXPECT_EQ(line(c, "Recurrent against the rest"),
            "Recurrent against the rest: the best recurrent model, lstm (98.99%), is 0.13 points "
            "behind the best non-recurrent one, cnn (99.12%); it has 1.1x more parameters, 2.7x "
            "higher latency and 1.6x lower throughput.");
  EXPECT_EQ(line(c, "Trade-off"),
            "Trade-off: of the 3 models within 0.5 points of the best accuracy, gru is the "
            "smallest (52,874 parameters) and cnn answers fastest (45.0 us).");
}

TEST(ReportConclusion, SwappingMeasuresChangesTheWinner) {
  auto models = fixed_models();
  std::swap(models[0].test_accuracy, models[3].test_accuracy);  // lstm <-> cnn
  const std::string c = report_conclusion(models);
  EXPECT_EQ(line(c, "Accuracy")
                .rfind("Accuracy: lstm is the most accurate at 99.12%, 0.13 points "
                       "ahead of cnn (98.99%)",
                       0),
            0u)
      << c;
  EXPECT_NE(line(c, "Recurrent against the rest").find("lstm (99.12%), is 0.13 points ahead of"),
            std::string::npos)
      << c;
  // The smallest model changes with its parameter count.
  std::swap(models[2].parameters, models[4].parameters);  // rnn <-> mlp
  EXPECT_EQ(
      line(report_conclusion(models), "Size").rfind("Size: mlp is the smallest with 18,058", 0),
      0u);
  // And the quickest with its latency.
  std::swap(models[4].latency_us, models[1].latency_us);  // mlp <-> gru
  EXPECT_EQ(line(report_conclusion(models), "Latency")
                .rfind("Latency: gru answers one sample fastest, in 20.0 us", 0),
            0u);
}

TEST(ReportConclusion, TiesUnmeasuredAxesAndSingleModels) {
  auto models = fixed_models();
  models[3].test_accuracy = models[0].test_accuracy;  // cnn ties lstm at 98.99%
  const std::string c = report_conclusion(models);
  EXPECT_EQ(line(c, "Accuracy"), "Accuracy: lstm and cnn share the best test accuracy, 98.99%.");
  EXPECT_NE(line(c, "Recurrent against the rest").find("matches the best non-recurrent one, cnn"),
            std::string::npos);
  // No latency measured: no latency sentence, no latency in the trade-off.
  for (auto& m : models) m.latency_us = 0;
  const std::string no_latency = report_conclusion(models);
  EXPECT_EQ(line(no_latency, "Latency"), "");
  EXPECT_EQ(line(no_latency, "Trade-off").find("answers fastest"), std::string::npos);
  // Only recurrent models: no comparison with the rest. One model: it is named alone.
  const std::vector<ReportModel> rec = {fixed_models()[0], fixed_models()[1]};
  EXPECT_EQ(line(report_conclusion(rec), "Recurrent against the rest"), "");
  const std::vector<ReportModel> one = {fixed_models()[3]};
  EXPECT_EQ(line(report_conclusion(one), "Accuracy"),
            "Accuracy: cnn reaches 99.12% on the test set (the only model).");
  EXPECT_EQ(line(report_conclusion(one), "Size"),
            "Size: only cnn was measured (61,706 parameters).");
  EXPECT_EQ(report_conclusion({}), "No models to compare.");
}

Report fixed_report() {
  Report r;
  r.title = "MNIST: RNNs against CNNs";
  r.data = "MNIST, 60,000 train / 10,000 test";
  r.machine = "2 cores";
  r.models = fixed_models();
  return r;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

std::vector<std::uint8_t> unbase64(const std::string& s) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<std::uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(ReportHtml, SelfContainedWithTableChartsAndConclusion) {
  const Report r = fixed_report();
  const std::string html = report_html(r);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const ReportModel& m : r.models)
    EXPECT_EQ(count(html, "<tr data-model=\"" + m.name + "\">"), 1u) << m.name;
  EXPECT_EQ(count(html, "<svg "), 4u);
  for (const char* id : {"chart-accuracy-parameters", "chart-accuracy-latency",
                         "chart-curves-accuracy", "chart-curves-loss"})
    EXPECT_EQ(count(html, std::string("id=\"") + id + "\""), 1u) << id;
  // One dot per model in each scatter, one line per model in each curve chart.
  EXPECT_EQ(count(html, "<circle cx"), 2 * 5 + 2 * 5 * 3u);
  EXPECT_EQ(count(html, "<polyline"), 2 * 5u);
  EXPECT_NE(html.find("cnn is the most accurate at 99.12%"), std::string::npos);
  // Best of each column in bold: cnn's accuracy, rnn's size, mlp's latency.
  EXPECT_NE(html.find("<td><strong>99.12%</strong></td>"), std::string::npos);
  EXPECT_NE(html.find("<td><strong>18,058</strong></td>"), std::string::npos);
  EXPECT_NE(html.find("<td><strong>20.0 us</strong></td>"), std::string::npos);
  // Nothing runs, nothing is fetched: no script, no external URL (the SVG namespace is a name),
  // every src a data: URL, and a policy that forbids the rest.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg") + 1)
      << "only the SVG namespace and the http-equiv of the policy";
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
  const std::regex src("src=\"([^\"]*)\"");
  int images = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), src); it != std::sregex_iterator();
       ++it, ++images) {
    const std::string url = (*it)[1];
    ASSERT_EQ(url.rfind("data:image/png;base64,", 0), 0u) << url.substr(0, 40);
    // The PNG decodes back to the digit's pixels.
    const auto png = unbase64(url.substr(22));
    const GrayImage g = decode_gray_image(
        std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "data url");
    EXPECT_EQ(g.width, 28);
    EXPECT_EQ(g.pixels, r.models[0].misclassified[0].pixels);
  }
  EXPECT_EQ(images, 5);
}

TEST(ReportHtml, EscapesNamesAndShowsUnmeasuredAsDash) {
  Report r = fixed_report();
  r.models[0].name = "<b>x&y</b>";
  r.models[1].latency_us = 0;
  const std::string html = report_html(r);
  EXPECT_EQ(html.find("<b>x&y</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&amp;y&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td>-</td>"), std::string::npos);
}

TEST(ReportMarkdown, SameTableRowPerModel) {
  const std::string md = report_markdown(fixed_report());
  EXPECT_NE(md.find("| Model | Family | Test accuracy | Errors | Parameters | Checkpoint | "
                    "Int8 weights | Train time / epoch | Inference (batch 1000) | Latency (batch "
                    "1) | Peak RSS | "
                    "Most confused (true->predicted) |"),
            std::string::npos);
  EXPECT_NE(
      md.find("| cnn | CNN | **99.12%** | 88 / 10,000 | 61,706 | 248.8 kB | 62.1 kB | 3.10 s | "
              "90,000 samples/s | 45.0 us | 95.0 MB | 4->9 (12), 7->2 (8) |"),
      std::string::npos)
      << md;
  EXPECT_EQ(count(md, "\n| "), 1u + 5u);  // header and one row per model
  EXPECT_NE(md.find("- Accuracy: cnn is the most accurate"), std::string::npos);
}

TEST(ReportFiles, WrittenAtomicallyAndReplaced) {
  const fs::path dir = fs::temp_directory_path() / ("recur-report-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  Report r = fixed_report();
  write_report((dir / "out").string(), r);  // the folder is made
  r.title = "second";
  write_report((dir / "out").string(), r);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "out")) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"report.html", "report.md"}));
  EXPECT_EQ(read_file((dir / "out" / "report.md").string()).rfind("# second\n", 0), 0u);
  EXPECT_EQ(read_file((dir / "out" / "report.html").string()), report_html(r));
  // A folder that cannot be made: an error naming it, nothing written.
  write_file_atomic((dir / "file").string(), std::string_view("x"));
  try {
    write_report((dir / "file" / "sub").string(), r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), (dir / "file" / "sub").string());
  }
  fs::remove_all(dir);
}

TEST(ReportJson, RoundTripsAndRefusesBadInput) {
  const Report r = fixed_report();
  const Report back = report_from_json(report_to_json(r), "r.json");
  EXPECT_EQ(report_html(back), report_html(r));
  EXPECT_EQ(report_to_json(back), report_to_json(r));
  auto error_of = [](const std::string& text) {
    try {
      report_from_json(text, "r.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("{").rfind("r.json: not valid JSON", 0), 0u) << error_of("{");
  EXPECT_EQ(error_of("{}"), "r.json: 'models' is missing");
  EXPECT_EQ(error_of(R"({"models": []})"), "r.json: the report has no models");
  EXPECT_EQ(error_of(R"({"models": [{"name": "a", "test_accuracy": 1.5}]})"),
            "r.json: model 0 'a': test_accuracy must be a fraction in [0, 1], got 1.5");
  EXPECT_EQ(error_of(R"({"models": [{"name": "a", "test_accuracy": 0.5},
                                    {"name": "a", "test_accuracy": 0.6}]})"),
            "r.json: model 1 'a': the name appears twice");
  EXPECT_EQ(error_of(R"({"models": [{"name": "a", "test_accuracy": 0.5, "parameters": 1.5}]})"),
            "r.json: model 'a': 'parameters' must be an integer, got 1.5");
  EXPECT_EQ(error_of(R"({"models": [{"name": "a", "test_accuracy": 0.5, "misclassified":
                [{"width": 2, "height": 2, "truth": 1, "predicted": 2, "pixels": [0, 1, 2]}]}]})"),
            "r.json: model 0 'a': a misclassified image has 3 pixels for 2x2");
  EXPECT_EQ(error_of(R"({"models": [{"name": "a", "test_accuracy": 0.5, "confused": [[1, 2]]}]})"),
            "r.json: model 'a': each 'confused' entry must be [true, predicted, count] integers");
}

TEST(ReportMeasures, MostConfusedPairsAndMisclassifiedPicks) {
  // 3 classes: 0->1 five times, 2->0 five times (tie: the smaller true class first), 1->2 once.
  const std::vector<std::int64_t> confusion = {90, 5, 0, 0, 80, 1, 5, 0, 70};
  const auto pairs = most_confused(confusion, 3, 2);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].truth, 0);
  EXPECT_EQ(pairs[0].predicted, 1);
  EXPECT_EQ(pairs[0].count, 5);
  EXPECT_EQ(pairs[1].truth, 2);
  EXPECT_EQ(pairs[1].predicted, 0);
  EXPECT_EQ(most_confused(confusion, 3, 10).size(), 3u);  // zeros left out
  EXPECT_THROW(most_confused(confusion, 4, 3), Error);
  // Mistakes at 1, 2, 4 (class 0), 5 (class 2): taken in turn from each class.
  const std::vector<std::int32_t> labels = {0, 0, 0, 1, 0, 2, 2};
  const std::vector<std::int32_t> predictions = {0, 1, 2, 1, 1, 0, 2};
  EXPECT_EQ(pick_misclassified(labels, predictions, 3), (std::vector<std::int64_t>{1, 5, 2}));
  EXPECT_EQ(pick_misclassified(labels, predictions, 10), (std::vector<std::int64_t>{1, 5, 2, 4}));
}

TEST(ReportMeasures, ConfusionCountsRowsAreTruthColumnsPredictions) {
  const std::vector<std::int32_t> labels = {0, 0, 0, 1, 0, 2, 2};
  const std::vector<std::int32_t> predictions = {0, 1, 2, 1, 1, 0, 2};
  EXPECT_EQ(confusion_counts(labels, predictions, 3),
            (std::vector<std::int64_t>{1, 2, 1, 0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(confusion_counts({}, {}, 2), (std::vector<std::int64_t>{0, 0, 0, 0}));
  EXPECT_THROW(confusion_counts(labels, {0, 1}, 3), Error);       // lengths differ
  EXPECT_THROW(confusion_counts(labels, predictions, 2), Error);  // class 2 outside [0, 2)
}

TEST(ReportMeasures, EpochCurveFromMetricsLines) {
  const std::string jsonl =
      R"({"kind":"train","step":50,"epoch":0,"loss":1.0,"accuracy":0.5})"
      "\n"
      R"({"kind":"train","step":100,"epoch":0,"loss":0.5,"accuracy":0.8})"
      "\n"
      R"({"kind":"validation","step":100,"epoch":0,"loss":0.4,"accuracy":0.9})"
      "\n"
      R"({"kind":"other","epoch":0})"
      "\n"
      "\n"
      R"({"kind":"train","step":150,"epoch":1,"loss":0.2,"accuracy":0.9})"
      "\n"
      R"({"kind":"validation","step":200,"epoch":1,"loss":0.3,"accuracy":0.95})"
      "\n"
      R"({"kind":"validation","step":300,"epoch":2,"loss":0.3,"accuracy":0.96})"
      "\n";
  const auto curve = epoch_curve_from_metrics(jsonl, "m.jsonl");
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_EQ(curve[0].epoch, 1);
  EXPECT_DOUBLE_EQ(curve[0].train_loss, 0.75);
  EXPECT_DOUBLE_EQ(curve[0].accuracy, 0.9);
  EXPECT_DOUBLE_EQ(curve[1].train_loss, 0.2);
  EXPECT_TRUE(std::isnan(curve[2].train_loss));  // no train line in epoch 2
  // A NaN loss survives the JSON round trip (as null) and is left out of the chart.
  Report r = fixed_report();
  r.models[0].curve = curve;
  const Report back = report_from_json(report_to_json(r), "r.json");
  EXPECT_TRUE(std::isnan(back.models[0].curve[2].train_loss));
  EXPECT_EQ(report_html(back), report_html(r));
  try {
    epoch_curve_from_metrics("{\"kind\":\"train\",\"epoch\":0,\"loss\":1}\nnot json\n", "m.jsonl");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "m.jsonl:2: not a JSON line");
  }
  EXPECT_THROW(epoch_curve_from_metrics(R"({"kind":"validation","epoch":0,"loss":1})", "m"), Error);
}

// ---- a second group: the IMDb pair of `recur report --text` ----

ReportModel text_model(const std::string& name, const std::string& family, double acc,
                       std::int64_t params, double latency_us, double per_s, double epoch_s,
                       std::int64_t rss) {
  ReportModel m = model(name, family, acc, params, latency_us, per_s, epoch_s, rss);
  m.group = "IMDb";
  m.test_count = 25000;
  m.class_names = {"negative", "positive"};
  m.confused = {{0, 1, 1400}, {1, 0, 1100}};
  m.misclassified.clear();
  m.mistakes = {{"A <b>great</b> film & a \"must\" see... not.", 0, 1, 0.991}};
  return m;
}

std::vector<ReportModel> with_text_models() {
  auto models = fixed_models();
  models.push_back(
      text_model("imdb-bilstm", "BiLSTM", 0.8988, 2830594, 5200, 1900, 230, 2100000000));
  models.push_back(text_model("imdb-cnn", "CNN", 0.8870, 2642306, 900, 9800, 70, 900000000));
  return models;
}

TEST(ReportConclusion, TextGroupIsComparedWithinItself) {
  const std::string c = report_conclusion(with_text_models());
  // The image models' lines are as before: the text models do not enter them.
  EXPECT_EQ(line(c, "Accuracy"), line(report_conclusion(fixed_models()), "Accuracy"));
  EXPECT_EQ(line(c, "Size"), line(report_conclusion(fixed_models()), "Size"));
  EXPECT_EQ(line(c, "IMDb: Accuracy"),
            "IMDb: Accuracy: imdb-bilstm is the most accurate at 89.88%, 1.18 points ahead of "
            "imdb-cnn (88.70%): 2,530 errors against 2,825, 10% fewer.");
  EXPECT_EQ(line(c, "IMDb: Size").rfind("IMDb: Size: imdb-cnn is the smallest with 2,642,306", 0),
            0u)
      << c;
  EXPECT_EQ(line(c, "IMDb: Training time").rfind("IMDb: Training time: imdb-cnn trains fastest", 0),
            0u);
  EXPECT_EQ(line(c, "IMDb: Throughput").rfind("IMDb: Throughput: imdb-cnn classifies the most", 0),
            0u);
  EXPECT_EQ(line(c, "IMDb: Latency").rfind("IMDb: Latency: imdb-cnn answers one sample fastest", 0),
            0u);
  EXPECT_EQ(line(c, "IMDb: Memory").rfind("IMDb: Memory: imdb-cnn trains in the least memory", 0),
            0u);
  EXPECT_NE(line(c, "IMDb: Recurrent against the rest")
                .find("the best recurrent model, imdb-bilstm (89.88%), is 1.18 points ahead of "
                      "the best non-recurrent one, imdb-cnn (88.70%)"),
            std::string::npos)
      << c;
}

TEST(ReportConclusion, SwappingTextMeasuresChangesTheTextWinner) {
  auto models = with_text_models();
  ReportModel& bilstm = models[5];
  ReportModel& cnn = models[6];
  std::swap(bilstm.test_accuracy, cnn.test_accuracy);
  std::swap(bilstm.latency_us, cnn.latency_us);
  std::swap(bilstm.parameters, cnn.parameters);
  std::swap(bilstm.peak_rss_bytes, cnn.peak_rss_bytes);
  const std::string c = report_conclusion(models);
  EXPECT_EQ(
      line(c, "IMDb: Accuracy").rfind("IMDb: Accuracy: imdb-cnn is the most accurate at 89.88%", 0),
      0u)
      << c;
  EXPECT_EQ(line(c, "IMDb: Size").rfind("IMDb: Size: imdb-bilstm is the smallest", 0), 0u);
  EXPECT_EQ(
      line(c, "IMDb: Latency").rfind("IMDb: Latency: imdb-bilstm answers one sample fastest", 0),
      0u);
  EXPECT_EQ(
      line(c, "IMDb: Memory").rfind("IMDb: Memory: imdb-bilstm trains in the least memory", 0), 0u);
  EXPECT_NE(line(c, "IMDb: Recurrent against the rest").find("is 1.18 points behind"),
            std::string::npos)
      << c;
  // The image lines do not move.
  EXPECT_EQ(line(c, "Accuracy"), line(report_conclusion(fixed_models()), "Accuracy"));
}

TEST(ReportHtml, TextGroupHasItsOwnTableChartsAndMistakeExcerpts) {
  Report r = fixed_report();
  r.models = with_text_models();
  const std::string html = report_html(r);
  EXPECT_EQ(count(html, "<table id=\"results-table\">"), 1u);
  EXPECT_EQ(count(html, "<table id=\"results-table-imdb\">"), 1u);
  for (const char* id : {"chart-accuracy-parameters", "chart-accuracy-latency",
                         "chart-curves-accuracy", "chart-curves-loss"}) {
    EXPECT_EQ(count(html, std::string("id=\"") + id + "\""), 1u) << id;
    EXPECT_EQ(count(html, std::string("id=\"") + id + "-imdb\""), 1u) << id;
  }
  EXPECT_EQ(count(html, "<svg "), 8u);
  // Best of each column within its own table: the BiLSTM's accuracy is bold although the image
  // models are more accurate, and the image table's bold accuracy stays cnn's.
  EXPECT_NE(html.find("<td><strong>89.88%</strong></td>"), std::string::npos);
  EXPECT_NE(html.find("<td><strong>99.12%</strong></td>"), std::string::npos);
  // Confused pairs by class name; the mistake's excerpt escaped, with its class names and
  // confidence; no digit images for text models.
  EXPECT_NE(html.find("negative\xE2\x86\x92positive (1400), positive\xE2\x86\x92negative (1100)"),
            std::string::npos);
  EXPECT_NE(html.find("<li><b>negative &#8594; positive</b> (99.1%): <q>A &lt;b&gt;great&lt;/b&gt; "
                      "film &amp; a &quot;must&quot; see... not.</q></li>"),
            std::string::npos)
      << html.substr(html.find("id=\"mistakes\""), 2000);
  EXPECT_EQ(count(html, "<div class=\"digits\""), 5u);
  EXPECT_NE(html.find("IMDb: Accuracy: imdb-bilstm is the most accurate"), std::string::npos);
  const std::string md = report_markdown(r);
  EXPECT_NE(md.find("## IMDb\n\n| Model |"), std::string::npos);
  EXPECT_NE(md.find("| imdb-cnn | CNN | 88.70% | 2,825 / 25,000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("negative->positive (1400), positive->negative (1100)"), std::string::npos);
  EXPECT_NE(md.find("- negative -> positive (99.1%): A <b>great</b>"), std::string::npos);
  // And the JSON form keeps all of it.
  const Report back = report_from_json(report_to_json(r), "r.json");
  EXPECT_EQ(report_html(back), report_html(r));
  EXPECT_EQ(back.models[6].group, "IMDb");
  EXPECT_EQ(back.models[6].mistakes.size(), 1u);
  EXPECT_THROW(report_from_json(R"({"models": [{"name": "a", "test_accuracy": 0.5, "mistakes":
                [{"truth": 0, "predicted": 1, "confidence": 1.5, "text": "x"}]}]})",
                                "r.json"),
               Error);
}

}  // namespace
}  // namespace recur
