// recur's own logits for the inputs an exported ONNX model is run on (tests/export/
// test_onnx_export.py compares the two): the test's oracle side.
//
//   onnx_reference MODEL images N FILE OUT          uint8 [N, rows, cols]
//   onnx_reference MODEL sequences N T FILE LENGTHS OUT   float [N, T, F], int64 [N]
//   onnx_reference MODEL tokens N T FILE LENGTHS OUT      int64 [N, T], int64 [N]
//   onnx_reference MODEL texts N FILE TOKENS LENGTHS OUT  N texts separated by NUL bytes
// OUT receives float32 logits [N, classes]. For texts they are Predictor::predict_texts's, and
// TOKENS / LENGTHS receive what the exported model takes for them (int64 [N, longest], int64
// [N]): each text encoded by the checkpoint's vocabulary, max_len and truncation. With
// ONNX_REFERENCE_REPEAT=R in the environment it computes them R more times and prints the median
// milliseconds of one computation (the speed side of bench/onnx_compare.py). Images go through
// Predictor::predict_images, float sequences through predict_sequences, token ids one text at a
// time through the model (the result a text gets alone, which predict_texts promises).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/predictor.hpp"
#include "recur/text.hpp"

namespace {

template <typename V>
std::vector<V> read_values(const std::string& path, std::size_t count) {
  std::ifstream in(path, std::ios::binary);
  std::vector<V> v(count);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(V)));
  if (!in) throw recur::Error(path, "expected " + std::to_string(count) + " values");
  return v;
}

std::vector<float> token_logits(const recur::Predictor& p, std::int64_t n, int steps,
                                const std::vector<std::int64_t>& tokens,
                                const std::vector<std::int64_t>& lengths) {
  const int C = p.num_classes();
  std::vector<float> logits(static_cast<std::size_t>(n) * C);
  recur::ModelWorkspace<float> ws;
  for (std::int64_t i = 0; i < n; ++i) {
    const int len = static_cast<int>(lengths[static_cast<std::size_t>(i)]);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(len));
    for (int t = 0; t < len; ++t)
      ids[static_cast<std::size_t>(t)] =
          static_cast<std::int32_t>(tokens[static_cast<std::size_t>(i * steps + t)]);
    const recur::SeqInfo seq = recur::SeqInfo::from_lengths({len});
    recur::ModelInput<float> in;
    in.batch = 1;
    in.seq = &seq;
    in.ids = ids.data();
    const float* out = p.model().forward(in, ws, false);
    std::copy(out, out + C, logits.begin() + i * C);
  }
  return logits;
}

std::vector<std::string> split_texts(const std::string& path, std::int64_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> texts;
  std::size_t start = 0;
  while (start <= all.size() && static_cast<std::int64_t>(texts.size()) < n) {
    std::size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    texts.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  if (static_cast<std::int64_t>(texts.size()) != n)
    throw recur::Error(path, "expected " + std::to_string(n) + " texts");
  return texts;
}

void write_tokens(const recur::Predictor& p, const std::vector<std::string>& texts,
                  const std::string& tokens_path, const std::string& lengths_path) {
  const recur::TextCodec& codec = p.text();
  std::vector<std::vector<std::int32_t>> ids;
  std::size_t longest = 1;
  for (const std::string& t : texts) {
    ids.push_back(codec.vocab.encode(t, codec.max_len, codec.truncate));
    longest = std::max(longest, ids.back().size());
  }
  std::vector<std::int64_t> tokens(texts.size() * longest, 0), lengths;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::copy(ids[i].begin(), ids[i].end(), tokens.begin() + i * longest);
    lengths.push_back(static_cast<std::int64_t>(ids[i].size()));
  }
  std::ofstream(tokens_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(tokens.data()),
             static_cast<std::streamsize>(tokens.size() * sizeof(std::int64_t)));
  std::ofstream(lengths_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(lengths.data()),
             static_cast<std::streamsize>(lengths.size() * sizeof(std::int64_t)));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() < 4) throw recur::Error("usage", "onnx_reference MODEL KIND N ... OUT");
    const recur::Predictor p(a[0]);
    const std::string& kind = a[1];
    const std::int64_t n = std::stoll(a[2]);
    std::vector<float> logits;
    std::function<void()> compute;
    std::vector<std::uint8_t> pixels;
    std::vector<float> x;
    std::vector<std::int64_t> tokens, lengths;
    std::vector<int> lens;
    std::vector<std::string> texts;
    if (kind == "images" && a.size() == 5) {
      pixels = read_values<std::uint8_t>(
          a[3], static_cast<std::size_t>(n) * p.image_rows() * p.image_cols());
      compute = [&] { logits = p.predict_images(pixels.data(), n).logits; };
    } else if ((kind == "sequences" || kind == "tokens") && a.size() == 7) {
      const int steps = std::stoi(a[3]);
      lengths = read_values<std::int64_t>(a[5], static_cast<std::size_t>(n));
      if (kind == "tokens") {
        tokens = read_values<std::int64_t>(a[4], static_cast<std::size_t>(n) * steps);
        compute = [&, steps] { logits = token_logits(p, n, steps, tokens, lengths); };
      } else {
        x = read_values<float>(a[4], static_cast<std::size_t>(n) * steps * p.features());
        lens.assign(lengths.begin(), lengths.end());
        compute = [&, steps] {
          logits = p.predict_sequences(x.data(), n, steps, lens.data()).logits;
        };
      }
    } else if (kind == "texts" && a.size() == 7) {
      texts = split_texts(a[3], n);
      compute = [&] { logits = p.predict_texts(texts).logits; };
      write_tokens(p, texts, a[4], a[5]);
    } else {
      throw recur::Error("usage", "unknown kind or wrong argument count");
    }
    compute();
    if (const char* r = std::getenv("ONNX_REFERENCE_REPEAT")) {
      std::vector<double> ms;
      for (int k = 0; k < std::atoi(r); ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        compute();
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      std::sort(ms.begin(), ms.end());
      if (!ms.empty()) std::printf("{\"ms_median\": %.6f}\n", ms[ms.size() / 2]);
    }
    std::ofstream out(a.back(), std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(logits.size() * sizeof(float)));
    return out ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onnx_reference: %s\n", e.what());
    return 2;
  }
}
