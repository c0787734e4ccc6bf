// `recur predict` end to end: test digits written as PNG and PGM (plain, inverted, enlarged) must
// give the probabilities the same digits give straight from the IDX file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"
#include "recur/data.hpp"
#include "recur/image.hpp"

namespace recur_cli_test {
namespace {

const std::string kTestImages = kMnistDir + "/t10k-images-idx3-ubyte";

recur::GrayImage test_digit(int index) {
  static const recur::ImageSet set = recur::load_mnist(kMnistDir, false);
  recur::GrayImage img;
  img.width = set.cols;
  img.height = set.rows;
  img.pixels.assign(set.image(index), set.image(index) + set.rows * set.cols);
  return img;
}

recur::GrayImage inverted(recur::GrayImage img) {
  for (auto& p : img.pixels) p = static_cast<std::uint8_t>(255 - p);
  return img;
}

std::vector<double> probabilities(const nlohmann::json& entry) {
  std::vector<double> p(10, -1.0);
  for (const auto& t : entry.at("top"))
    p.at(t.at("class").get<std::size_t>()) = t.at("probability");
  return p;
}

TEST(PredictCli, PicturesGiveTheSameAnswerAsTheIdxFile) {
  ScratchDir tmp;
  std::string pictures;
  for (int i = 0; i < 5; ++i) {
    const std::string path = tmp / (std::string("digit") + std::to_string(i) + ".png");
    recur::write_png(path, test_digit(i));
    pictures += ' ';
    pictures += quote(path);
  }
  const std::string model = quote(shared_run().model());
  const CliResult direct = run_cli("predict " + model + " " + quote(kTestImages) +
                                   " --index 0,1,2 --index 3 --index 4 --json --top 10");
  ASSERT_EQ(direct.code, 0) << direct.err;
  // --raw: MNIST's own digits as pictures, taken as they are, are exactly the IDX images.
  const CliResult files = run_cli("predict " + model + pictures + " --json --top 10 --raw");
  ASSERT_EQ(files.code, 0) << files.err;
  EXPECT_EQ(files.err, "");  // 28x28 white on black: nothing to note
  // Without it they are framed again (a note each), and the framing keeps them what they are.
  const CliResult framed = run_cli("predict " + model + pictures + " --json");
  ASSERT_EQ(framed.code, 0) << framed.err;
  EXPECT_TRUE(contains(framed.err, "digit0.png: ink ")) << framed.err;
  EXPECT_TRUE(contains(framed.err, "framed as MNIST's digits")) << framed.err;
  for (const auto& j : nlohmann::json::parse(framed.out)) EXPECT_TRUE(j.at("framed").get<bool>());

  const auto a = nlohmann::json::parse(direct.out), b = nlohmann::json::parse(files.out);
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  const int labels[] = {7, 2, 1, 0, 4};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a[i].at("index").get<std::size_t>(), i);
    EXPECT_EQ(a[i].at("label").get<int>(), labels[i]);
    EXPECT_FALSE(b[i].contains("label"));
    EXPECT_EQ(b[i].at("input").get<std::string>(),
              tmp / (std::string("digit") + std::to_string(i) + ".png"));
    EXPECT_EQ(a[i].at("prediction"), b[i].at("prediction"));
    EXPECT_EQ(probabilities(a[i]), probabilities(b[i]));
    // All ten classes, likeliest first, summing to one, the first being the prediction.
    const auto& top = b[i].at("top");
    ASSERT_EQ(top.size(), 10u);
    EXPECT_EQ(top[0].at("class"), b[i].at("prediction"));
    double sum = 0;
    for (std::size_t k = 0; k < top.size(); ++k) {
      sum += top[k].at("probability").get<double>();
      if (k > 0) {
        EXPECT_GE(top[k - 1].at("probability"), top[k].at("probability"));
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
}

// An IDX images file without its labels file beside it (or under another name) is read alone:
// the same predictions, no labels.
TEST(PredictCli, IdxImagesWithoutLabelsFile) {
  ScratchDir tmp;
  const std::string model = quote(shared_run().model());
  const CliResult with_labels =
      run_cli("predict " + model + " " + quote(kTestImages) + " --index 0,1 --json");
  ASSERT_EQ(with_labels.code, 0) << with_labels.err;
  for (const std::string name : {"t10k-images-idx3-ubyte", "digits.idx"}) {
    const std::string alone = tmp / name;
    fs::copy_file(kTestImages, alone);
    const CliResult r = run_cli("predict " + model + " " + quote(alone) + " --index 0,1 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto a = nlohmann::json::parse(with_labels.out), b = nlohmann::json::parse(r.out);
    ASSERT_EQ(b.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(a[i].contains("label"));
      EXPECT_FALSE(b[i].contains("label")) << name;
      EXPECT_EQ(a[i].at("prediction"), b[i].at("prediction"));
      EXPECT_EQ(probabilities(a[i]), probabilities(b[i]));
    }
  }
}

TEST(PredictCli, TextOutputShowsTheTopClasses) {
  ScratchDir tmp;
  const std::string path = tmp / "seven.png";
  recur::write_png(path, test_digit(0));
  const CliResult r = run_cli("predict " + quote(shared_run().model()) + " " + quote(path));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(path + ": ", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.out, "  top 3: ")) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '%'), 3) << r.out;

  const CliResult idx = run_cli("predict " + quote(shared_run().model()) + " " +
                                quote(kTestImages) + " --index 0 --top 1");
  ASSERT_EQ(idx.code, 0) << idx.err;
  EXPECT_TRUE(contains(idx.out, kTestImages + "[0]: ")) << idx.out;
  EXPECT_TRUE(contains(idx.out, "(label 7)  top 1: ")) << idx.out;
}

TEST(PredictCli, InvertsDarkOnLightAndResizes) {
  ScratchDir tmp;
  const std::string plain = tmp / "plain.png", paper = tmp / "paper.png", big = tmp / "big.png";
  const std::string pgm = tmp / "plain.pgm";
  recur::write_png(plain, test_digit(0));
  recur::write_png(paper, inverted(test_digit(0)));
  recur::write_png(big, recur::resize_area(test_digit(0), 56, 56));
  {
    const recur::GrayImage img = test_digit(0);
    std::ofstream out(pgm, std::ios::binary);
    out << "P5\n# a test digit\n28 28\n255\n";
    out.write(reinterpret_cast<const char*>(img.pixels.data()),
              static_cast<std::streamsize>(img.pixels.size()));
  }
  const std::string model = quote(shared_run().model());
  const CliResult r = run_cli("predict " + model + " " + quote(plain) + " " + quote(paper) + " " +
                              quote(big) + " " + quote(pgm) + " --json --top 10 --raw");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: " + big + " is 56x56, resized to 28x28")) << r.err;
  EXPECT_TRUE(contains(r.err, "note: " + paper + " looks like a dark digit on a light background"))
      << r.err;
  EXPECT_FALSE(contains(r.err, plain)) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 4u);
  EXPECT_FALSE(j[0].at("inverted").get<bool>());
  EXPECT_TRUE(j[1].at("inverted").get<bool>());
  EXPECT_FALSE(j[2].at("inverted").get<bool>());
  EXPECT_EQ(j[2].at("width"), 56);
  EXPECT_EQ(j[2].at("height"), 56);
  EXPECT_EQ(j[0].at("width"), 28);
  // Inverting twice is exact, and PGM reads the same pixels: each file alone (a batch of one,
  // so every run takes the same kernel path; rows at other places in a batch may round
  // differently on some CPUs' BLAS) gives the same probabilities bit for bit.
  auto alone = [&](const std::string& path) {
    const CliResult one =
        run_cli("predict " + model + " " + quote(path) + " --json --top 10 --raw");
    EXPECT_EQ(one.code, 0) << one.err;
    return probabilities(nlohmann::json::parse(one.out)[0]);
  };
  const auto plain_alone = alone(plain);
  EXPECT_EQ(plain_alone, alone(paper));
  EXPECT_EQ(plain_alone, alone(pgm));
  for (std::size_t c = 0; c < 10; ++c) {
    EXPECT_NEAR(probabilities(j[0])[c], probabilities(j[1])[c], 1e-6);
    EXPECT_NEAR(probabilities(j[0])[c], probabilities(j[3])[c], 1e-6);
  }
  const auto p0 = probabilities(j[0]), p2 = probabilities(j[2]);
  for (std::size_t c = 0; c < 10; ++c) EXPECT_NEAR(p0[c], p2[c], 0.05);

  // Forcing the choice: "no" keeps the paper as it is, "yes" inverts the plain digit.
  const CliResult forced = run_cli("predict " + model + " " + quote(paper) + " " + quote(plain) +
                                   " --invert no --json --raw");
  ASSERT_EQ(forced.code, 0) << forced.err;
  EXPECT_FALSE(nlohmann::json::parse(forced.out)[0].at("inverted").get<bool>());
  const CliResult yes =
      run_cli("predict " + model + " " + quote(plain) + " --invert yes --json --raw");
  ASSERT_EQ(yes.code, 0) << yes.err;
  EXPECT_TRUE(nlohmann::json::parse(yes.out)[0].at("inverted").get<bool>());
}

TEST(PredictCli, UnreadableImageExitsWith2) {
  ScratchDir tmp;
  const std::string text = tmp / "note.png";
  std::ofstream(text) << "not a picture at all\n";
  const std::string model = quote(shared_run().model());
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(text)), text + ": "));
  const std::string truncated = tmp / "truncated.png";
  recur::write_png(truncated, test_digit(0));
  const std::string bytes = slurp(truncated);
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(truncated)), truncated + ": "));
  const std::string not_idx = tmp / "t10k-images-idx3-ubyte";
  std::ofstream(not_idx) << "not an IDX file\n";
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(not_idx) + " --index 1"),
                         not_idx + ": "));
  const std::string missing = tmp / "missing.png";
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(missing)), missing + ": "));
}

TEST(PredictCli, BadFlagValuesExitWith2) {
  ScratchDir tmp;
  const std::string digit = tmp / "digit.png";
  recur::write_png(digit, test_digit(0));
  const std::string model = quote(shared_run().model());
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(digit) + " --top 0"),
                         "--top: must be a positive integer, got 0"));
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(digit) + " --invert maybe"),
                         "--invert: unknown value 'maybe' (choose from auto, yes, no)"));
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(kTestImages) + " --index 10000"),
                         "--index: 10000 is out of range"));
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(kTestImages) + " --index 1,a"),
                         "--index: must be integers (such as 0,5,9), got '1,a'"));
  EXPECT_TRUE(fails_with(run_cli("predict " + model + " " + quote(digit) + " --top x"),
                         "--top: must be an integer, got 'x'"));
  EXPECT_TRUE(fails_with(run_cli("predict " + model), "predict: missing inputs: "));
  EXPECT_TRUE(fails_with(run_cli("predict " + quote(tmp / "none.safetensors") + " " + quote(digit)),
                         tmp / "none.safetensors"));
}

}  // namespace
}  // namespace recur_cli_test
