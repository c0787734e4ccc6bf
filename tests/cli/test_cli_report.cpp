// recur report --from-json: writes report.html and report.md from saved measures; a missing or
// bad file, a bad measure and an unusable output folder are each one error line naming the
// file or folder, exit code 2, and leave no report behind.
#include <chrono>
#include <string>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

const char* kMeasures = R"({"title": "t", "models": [
  {"name": "lstm", "family": "LSTM", "test_accuracy": 0.9899, "test_count": 10000,
   "parameters": 69898, "latency_us": 122},
  {"name": "cnn", "family": "CNN", "test_accuracy": 0.9912, "test_count": 10000,
   "parameters": 61706, "latency_us": 45}]})";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(ReportCli, FromJsonWritesBothFiles) {
  ScratchDir dir;
  write_text(dir / "m.json", kMeasures);
  const CliResult r =
      run_cli("report --from-json " + quote(dir / "m.json") + " --out " + quote(dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "(2 models)")) << r.out;
  const std::string html = slurp(dir.path() / "out" / "report.html");
  EXPECT_TRUE(contains(html, "<tr data-model=\"cnn\">"));
  EXPECT_TRUE(contains(html, "cnn is the most accurate at 99.12%"));
  EXPECT_TRUE(contains(slurp(dir.path() / "out" / "report.md"), "| lstm | LSTM | 98.99% |"));
}

TEST(ReportCli, BadInputIsOneErrorLineAndExitCode2) {
  ScratchDir dir;
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "missing.json") + " --out " + quote(dir / "out")),
      dir / "missing.json"));
  write_text(dir / "bad.json", R"({"models": [{"name": "a", "test_accuracy": 99.1}]})");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "bad.json") + " --out " + quote(dir / "out")),
      "model 0 'a': test_accuracy must be a fraction in [0, 1], got 99.1"));
  write_text(dir / "broken.json", "{\"models\": [");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "broken.json") + " --out " + quote(dir / "out")),
      dir / "broken.json: not valid JSON"));
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
  write_text(dir / "m.json", kMeasures);
  write_text(dir / "file", "x");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "m.json") + " --out " + quote(dir / "file")),
      dir / "file: cannot create the report folder"));
  EXPECT_TRUE(fails_with(
      run_cli("report --data " + quote(dir / "no-data") + " --out " + quote(dir / "out")),
      dir / "no-data"));
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

// A small learnable IDX set in MNIST's file names: `rows` x `cols` images of noise with a bright
// bar whose height encodes the label (10 classes), so the report runs on other sizes than 28x28.
void write_bar_set(const fs::path& dir, const std::string& prefix, int count, int rows, int cols,
                   unsigned seed) {
  fs::create_directories(dir);
  auto be32 = [](std::string& s, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  };
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  be32(images, static_cast<std::uint32_t>(count));
  be32(images, static_cast<std::uint32_t>(rows));
  be32(images, static_cast<std::uint32_t>(cols));
  be32(labels, static_cast<std::uint32_t>(count));
  unsigned state = seed;
  for (int i = 0; i < count; ++i) {
    const int label = i % 10;
    labels += static_cast<char>(label);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        state = state * 1664525u + 1013904223u;
        const bool bar = r / 2 == label && c >= 2 && c < cols - 2;
        images += static_cast<char>(bar ? 255 : (state >> 24) % 48);
      }
  }
  std::ofstream(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary) << images;
  std::ofstream(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary) << labels;
}

const char* const kReportModels[] = {"rnn", "lstm", "gru", "bilstm", "lstm-2layer", "mlp", "cnn"};

TEST(ReportCli, TrainsMeasuresAndReusesEveryModel) {
  ScratchDir dir;
  const fs::path data = dir.path() / "bars";
  write_bar_set(data, "train", 300, 20, 20, 1);
  write_bar_set(data, "t10k", 100, 20, 20, 2);
  const std::string args = "report --budget tiny --threads 2 --data " + quote(data.string()) +
                           " --out " + quote(dir / "out");
  const CliResult first = run_cli(args);
  ASSERT_EQ(first.code, 0) << first.err << first.out;
  EXPECT_TRUE(contains(first.out, "(7 models)")) << first.out;
  const std::string md = slurp(dir.path() / "out" / "report.md");
  const std::string html = slurp(dir.path() / "out" / "report.html");
  for (const char* header :
       {"Test accuracy", "Parameters", "Checkpoint", "Int8 weights", "Train time / epoch",
        "Inference (batch 1000)", "Latency (batch 1)", "Peak RSS", "Most confused"})
    EXPECT_TRUE(contains(md, header)) << header;
  for (const char* name : kReportModels) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(contains(html, std::string("<tr data-model=\"") + name + "\">"));
    const auto row = md.find(std::string("| ") + name + " |");
    ASSERT_NE(row, std::string::npos);
    const std::string line = md.substr(row, md.find('\n', row) - row);
    // Every measure is there: no cell is "-" (the writer's mark for a missing measure).
    EXPECT_FALSE(contains(line, "| - |")) << line;
    EXPECT_TRUE(contains(line, " / 100 |")) << line;  // errors on the whole test set
    EXPECT_TRUE(contains(line, "samples/s")) << line;
    EXPECT_TRUE(contains(line, " MB")) << line;  // peak RSS
    const fs::path run = dir.path() / "out" / "runs" / name;
    EXPECT_TRUE(fs::exists(run / "best.safetensors"));
    EXPECT_TRUE(fs::exists(run / "metrics.jsonl"));
  }
  EXPECT_TRUE(contains(html, "<svg"));
  EXPECT_TRUE(contains(md, "20x20"));

  // The second run reuses every model: nothing is trained, the numbers are the same.
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult second = run_cli(args);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(second.code, 0) << second.err;
  for (const char* name : kReportModels)
    EXPECT_TRUE(contains(second.out, std::string(name) + ": reused")) << second.out;
  EXPECT_FALSE(contains(second.out, "training")) << second.out;
  EXPECT_LT(seconds, 30.0);
  EXPECT_EQ(slurp(dir.path() / "out" / "report.md"), md);

  // A model whose measures are lost is measured again from its checkpoint, not retrained.
  fs::remove(dir.path() / "out" / "runs" / "cnn" / "measures.json");
  const CliResult third = run_cli(args);
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_TRUE(contains(third.out, "cnn: reused the trained model")) << third.out;
  const std::string md3 = slurp(dir.path() / "out" / "report.md");
  const auto cnn_row = [](const std::string& text) {
    const auto at = text.find("| cnn |");
    return text.substr(at, text.find(" | ", text.find("% |", at)) - at);  // up to the errors
  };
  EXPECT_EQ(cnn_row(md3), cnn_row(md));
}

TEST(ReportCli, BadFlagsExitWith2BeforeWriting) {
  ScratchDir dir;
  const fs::path data = dir.path() / "bars";
  write_bar_set(data, "train", 50, 12, 12, 1);
  write_bar_set(data, "t10k", 20, 12, 12, 2);
  const std::string base = "report --data " + quote(data.string()) + " --out " + quote(dir / "out");
  EXPECT_TRUE(fails_with(run_cli(base + " --budget huge"), "--budget"));
  EXPECT_TRUE(fails_with(run_cli(base + " --threads -1"), "--threads"));
  EXPECT_TRUE(fails_with(run_cli(base + " --threads many"), "--threads"));
  EXPECT_TRUE(fails_with(run_cli(base + " --budget tiny --train-one resnet"), "no model 'resnet'"));
  EXPECT_TRUE(fails_with(run_cli(base + " --bogus"), "--bogus"));
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

// A small learnable label<TAB>text file: reviews of 4..30 words, label 1 when they hold more
// words from the "good" list than from the "bad" one, with neutral filler.
void write_review_file(const fs::path& path, int count, unsigned seed) {
  const char* good[] = {"great", "wonderful", "moving", "superb", "funny", "brilliant"};
  const char* bad[] = {"awful", "boring", "dull", "terrible", "weak", "clumsy"};
  const char* filler[] = {"the", "film", "plot", "actor", "scene",
                          "was", "a",    "and",  "it",    "story"};
  std::string text;
  unsigned state = seed;
  auto next = [&](unsigned n) {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) % n;
  };
  for (int i = 0; i < count; ++i) {
    const int label = i % 2;
    const int words = 4 + static_cast<int>(next(27));
    std::string review;
    for (int w = 0; w < words; ++w) {
      const unsigned kind = next(3);
      const char* word = kind == 0 ? (label ? good : bad)[next(6)]
                         : kind == 1
                             ? filler[next(10)]
                             : (next(4) == 0 ? (label ? bad : good)[next(6)] : filler[next(10)]);
      if (w) review += ' ';
      review += word;
    }
    text +=
        std::to_string(label) + "\t" + review + (i % 7 == 0 ? " <br /><br />The end." : "") + "\n";
  }
  std::ofstream(path, std::ios::binary) << text;
}

// --text adds the text pair: trained in child processes (the BiLSTM by `recur train` itself),
// every measure filled, confusions by class name, the most confident mistakes as excerpts, and
// all of it reused by a second run.
TEST(ReportCli, TextAddsTheBiLstmAndTheCnnAndReusesThem) {
  ScratchDir dir;
  const fs::path data = dir.path() / "bars";
  write_bar_set(data, "train", 120, 12, 12, 1);
  write_bar_set(data, "t10k", 40, 12, 12, 2);
  write_review_file(dir.path() / "reviews.tsv", 300, 5);
  const std::string args = "report --budget tiny --threads 2 --text --text-data " +
                           quote(dir / "reviews.tsv") + " --data " + quote(data.string()) +
                           " --out " + quote(dir / "out");
  const CliResult first = run_cli(args);
  ASSERT_EQ(first.code, 0) << first.err << first.out;
  EXPECT_TRUE(contains(first.out, "(9 models)")) << first.out;
  const std::string md = slurp(dir.path() / "out" / "report.md");
  const std::string html = slurp(dir.path() / "out" / "report.html");
  EXPECT_TRUE(contains(md, "## Text\n")) << md;
  for (const char* name : {"imdb-bilstm", "imdb-cnn"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(contains(html, std::string("<tr data-model=\"") + name + "\">"));
    const auto row = md.find(std::string("| ") + name + " |");
    ASSERT_NE(row, std::string::npos);
    const std::string line = md.substr(row, md.find('\n', row) - row);
    EXPECT_FALSE(contains(line, "| - |")) << line;
    EXPECT_TRUE(contains(line, " / 60 |")) << line;  // the whole test side: 20% of 300
    EXPECT_TRUE(contains(line, "samples/s")) << line;
    EXPECT_TRUE(contains(line, " MB")) << line;
    const fs::path run = dir.path() / "out" / "runs" / name;
    EXPECT_TRUE(fs::exists(run / "best.safetensors"));
    EXPECT_TRUE(fs::exists(run / "config.toml"));
    const std::string measures = slurp(run / "measures.json");
    EXPECT_TRUE(contains(measures, "\"class_names\": [\n    \"0\",")) << measures;
    EXPECT_TRUE(contains(measures, "\"group\": \"Text\"")) << measures;
    EXPECT_TRUE(contains(measures, "latency over test reviews 0-59 (median ")) << measures;
  }
  // The BiLSTM is `recur train`'s own run folder: its config.toml records the recipe.
  EXPECT_TRUE(contains(slurp(dir.path() / "out" / "runs" / "imdb-bilstm" / "config.toml"),
                       "bidirectional=true"));
  EXPECT_TRUE(contains(html, "id=\"chart-accuracy-parameters-text\""));
  EXPECT_TRUE(contains(html, "id=\"results-table-text\""));
  EXPECT_TRUE(contains(html, "Text: Accuracy: "));
  // A tiny model on 240 reviews still makes mistakes: shown as excerpts, not images.
  EXPECT_TRUE(contains(html, "<ol class=\"mistakes\" data-model=\"imdb-cnn\">") ||
              contains(html, "<ol class=\"mistakes\" data-model=\"imdb-bilstm\">"))
      << html.substr(html.find("id=\"mistakes\""));

  const CliResult second = run_cli(args);
  ASSERT_EQ(second.code, 0) << second.err;
  for (const char* name : {"imdb-bilstm", "imdb-cnn", "cnn", "lstm"})
    EXPECT_TRUE(contains(second.out, std::string(name) + ": reused")) << second.out;
  EXPECT_FALSE(contains(second.out, "training")) << second.out;
  EXPECT_EQ(slurp(dir.path() / "out" / "report.md"), md);
}

TEST(ReportCli, TextWithoutItsDataFailsBeforeWriting) {
  ScratchDir dir;
  const fs::path data = dir.path() / "bars";
  write_bar_set(data, "train", 50, 12, 12, 1);
  write_bar_set(data, "t10k", 20, 12, 12, 2);
  const std::string base =
      "report --budget tiny --text --data " + quote(data.string()) + " --out " + quote(dir / "out");
  EXPECT_TRUE(fails_with(run_cli(base + " --text-data " + quote(dir / "imdb")),
                         "--text: " + (dir / "imdb") + " is missing; run `recur data fetch imdb"));
  fs::create_directories(dir.path() / "empty");
  EXPECT_TRUE(fails_with(run_cli(base + " --text-data " + quote(dir / "empty")),
                         "--text-data: " + (dir / "empty") + " is not text data"));
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

}  // namespace
}  // namespace recur_cli_test
