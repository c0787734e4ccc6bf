// eval, predict and inspect for models built from layers (text and .npy models).
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "cli/model_io.hpp"
#include "cli/sequence_data.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/plot.hpp"
#include "recur/predictor.hpp"
#include "recur/safetensors.hpp"

namespace recur::cli {

bool is_layer_list_file(const std::string& path) {
  try {
    return is_layer_list_checkpoint(read_safetensors(path).metadata);
  } catch (const Error&) {
    return false;
  }
}

namespace {

std::string meta(const Metadata& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace

namespace {

// The data a layered model is evaluated on by default: the one it was trained on when that is
// a named data set.
std::string default_data(const Metadata& m) {
  try {
    const auto j = nlohmann::json::parse(meta(m, "recur.train_data"));
    if (j.value("name", "") == "imdb") return "imdb";
  } catch (const nlohmann::json::exception&) {
  }
  return "";
}

}  // namespace

int run_sequence_eval(const Predictor& predictor, std::string data, const std::string& out_dir,
                      bool json, int threads, int batch) {
  const std::string& model_path = predictor.path();
  const Model<float>& model = predictor.model();
  if (data.empty()) data = default_data(predictor.metadata());
  if (data.empty())
    throw Error("--data",
                "name the data to evaluate on (the model was trained on arrays or a "
                "text file; give its folder or file)");
  const std::string path = resolve_data_path(data);
  std::shared_ptr<const SequenceSource> test;
  TextSet texts;
  std::vector<std::string> class_names;
  if (predictor.input_kind() == InputKind::text) {
    const TextCodec& codec = predictor.text();
    if (data == "imdb" && !std::filesystem::exists(path + "/reviews.json"))
      throw Error("--data", "data/imdb/reviews.json is missing; run `recur data fetch imdb` first");
    texts = load_text_splits(path).test;
    test = std::make_shared<TokenSequences>(texts, codec.vocab, codec.max_len, codec.truncate);
    class_names = codec.class_names;
  } else {
    auto split = std::make_shared<SequenceSplit>(load_npy_folder(path));
    const SequenceSet& te = split->test;
    RECUR_CHECK(te.features == model.spec().input.features, path,
                fmt::format("x_test has {} features per step but the model reads {}", te.features,
                            model.spec().input.features));
    test =
        std::make_shared<ArraySequences>(std::shared_ptr<const SequenceSet>(split, &split->test));
  }
  const int k = model.spec().num_classes;
  RECUR_CHECK(
      test->num_classes() <= k, path,
      fmt::format("labels go up to {} but the model has {} classes", test->num_classes() - 1, k));
  while (static_cast<int>(class_names.size()) < k)
    class_names.push_back(std::to_string(class_names.size()));
  const std::string out = out_dir.empty() ? parent_folder(model_path) : out_dir;
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out))
    throw Error("--out", "cannot create folder " + out);

  BatchRunner runner(predictor, resolve_threads(threads));
  const EvalResult r = runner.evaluate(*test, batch);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(k) * k, 0);
  for (std::int64_t i = 0; i < r.count; ++i)
    ++counts[static_cast<std::size_t>(test->label(i)) * k +
             static_cast<std::size_t>(r.predictions[static_cast<std::size_t>(i)])];
  write_confusion_png(
      out + "/confusion.png", counts, k, {},
      fmt::format("confusion on {} test samples, accuracy {:.2f}%", r.count, 100.0 * r.accuracy()));

  // The most confident mistakes: wrong predictions ordered by the probability given to them.
  std::vector<std::int64_t> wrong;
  for (std::int64_t i = 0; i < r.count; ++i)
    if (r.predictions[static_cast<std::size_t>(i)] != test->label(i)) wrong.push_back(i);
  auto confidence = [&](std::int64_t i) {
    return r.probabilities[static_cast<std::size_t>(i) * k +
                           static_cast<std::size_t>(r.predictions[static_cast<std::size_t>(i)])];
  };
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](std::int64_t a, std::int64_t b) { return confidence(a) > confidence(b); });
  nlohmann::json mistakes = nlohmann::json::array();
  for (std::size_t n = 0; n < std::min<std::size_t>(10, wrong.size()); ++n) {
    const std::int64_t i = wrong[n];
    nlohmann::json j = {
        {"index", i},
        {"label", class_names[static_cast<std::size_t>(test->label(i))]},
        {"prediction",
         class_names[static_cast<std::size_t>(r.predictions[static_cast<std::size_t>(i)])]},
        {"probability", confidence(i)}};
    if (!texts.texts.empty())
      j["text"] = text_excerpt(texts.texts[static_cast<std::size_t>(i)], 300);
    mistakes.push_back(std::move(j));
  }
  nlohmann::json confusion = nlohmann::json::array();
  for (int i = 0; i < k; ++i) {
    const auto row = counts.begin() + static_cast<std::ptrdiff_t>(i) * k;
    confusion.push_back(std::vector<std::int64_t>(row, row + k));
  }
  const nlohmann::json report = {{"model", model_path},
                                 {"data", data},
                                 {"count", r.count},
                                 {"correct", r.correct},
                                 {"accuracy", r.accuracy()},
                                 {"loss", r.loss},
                                 {"classes", class_names},
                                 {"confusion", confusion},
                                 {"confident_mistakes", mistakes},
                                 {"precision", to_string(predictor.precision())}};
  write_file_atomic(out + "/eval.json", report.dump(2) + "\n");
  if (json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  fmt::print("model: {} ({} parameters)\n", model_path, model.num_params());
  if (predictor.precision() == InferPrecision::int8)
    fmt::print("precision: int8 ({} kernel; embeddings stay fp32)\n", int8_kernel_name());
  fmt::print("test accuracy {:.2f}% (loss {:.4f}) on {} samples of {}, {} wrong\n\n",
             100.0 * r.accuracy(), r.loss, r.count, data, r.count - r.correct);
  fmt::print("confusion (rows: true class, columns: predicted)\n");
  for (int i = 0; i < k; ++i) {
    std::string line = fmt::format("{:>12}", class_names[static_cast<std::size_t>(i)]);
    for (int j = 0; j < k; ++j)
      line += fmt::format("{:>8}", counts[static_cast<std::size_t>(i) * k + j]);
    fmt::print("{}\n", line);
  }
  if (!mistakes.empty()) {
    fmt::print("\nmost confident mistakes:\n");
    for (const auto& m : mistakes) {
      fmt::print("  #{} {} read as {} ({:.1f}%)", m["index"].get<std::int64_t>(),
                 m["label"].get<std::string>(), m["prediction"].get<std::string>(),
                 100.0 * m["probability"].get<double>());
      if (m.contains("text")) fmt::print(": {}", m["text"].get<std::string>());
      fmt::print("\n");
    }
  }
  fmt::print("\nwrote confusion.png, eval.json in {}\n", out);
  return 0;
}

int run_text_predict(const Predictor& predictor, std::vector<std::string> texts, bool json) {
  const TextCodec& codec = predictor.text();
  std::string source = "--text";
  if (texts.empty()) {
    source = "stdin";
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
    if (texts.empty())
      throw Error("stdin", "no text to classify: give --text \"...\" or one text per line");
  }
  for (std::size_t i = 0; i < texts.size(); ++i)
    if (const std::string problem = predictor.text_problem(texts[i]); !problem.empty())
      throw Error(source, texts.size() == 1 ? "the text " + problem
                                            : fmt::format("text {} {}", i + 1, problem));
  const Predictions result = predictor.predict_texts(texts);
  const int k = result.classes;
  const std::vector<std::int32_t>& pred = result.labels;
  const std::vector<float>& probs = result.probabilities;
  // Token counts as the model read them (after truncation).
  std::vector<int> token_counts;
  for (const std::string& text : texts)
    token_counts.push_back(
        static_cast<int>(codec.vocab.encode(text, codec.max_len, codec.truncate).size()));
  nlohmann::json all = nlohmann::json::array();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string& name = pred[i] < static_cast<int>(codec.class_names.size())
                                  ? codec.class_names[static_cast<std::size_t>(pred[i])]
                                  : std::to_string(pred[i]);
    const float p = probs[i * k + static_cast<std::size_t>(pred[i])];
    if (json) {
      all.push_back(
          {{"text", text_excerpt(texts[i], 200)},
           {"prediction", name},
           {"class", pred[i]},
           {"probability", p},
           {"tokens", token_counts[i]},
           {"probabilities",
            std::vector<float>(probs.begin() + static_cast<std::ptrdiff_t>(i * k),
                               probs.begin() + static_cast<std::ptrdiff_t>((i + 1) * k))}});
    } else {
      fmt::print("{} {:.1f}%  {}\n", name, 100.0 * p, text_excerpt(texts[i], 70));
    }
  }
  if (json) std::cout << all.dump(2) << "\n";
  return 0;
}

}  // namespace recur::cli
