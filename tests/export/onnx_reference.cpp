// recur's own logits for the inputs an exported ONNX model is run on (tests/export/
// test_onnx_export.py compares the two): the test's oracle side.
//
//   onnx_reference MODEL images N FILE OUT          uint8 [N, rows, cols]
//   onnx_reference MODEL sequences N T FILE LENGTHS OUT   float [N, T, F], int64 [N]
//   onnx_reference MODEL tokens N T FILE LENGTHS OUT      int64 [N, T], int64 [N]
// OUT receives float32 logits [N, classes]. With ONNX_REFERENCE_REPEAT=R in the environment it
// computes them R more times and prints the median milliseconds of one computation (the speed
// side of bench/onnx_compare.py). Images go through Predictor::predict_images, float
// sequences through predict_sequences, token ids one text at a time through the model, as
// Predictor::predict_texts runs them.
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
