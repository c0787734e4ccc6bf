// Small sequence data sets for the command-line tests: a labelled text file and a folder of
// .npy arrays, each drawn from a seed.
#pragma once

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "recur/rng.hpp"
#include "recur/text.hpp"

namespace recur_cli_test {

// Reviews made of filler words with one sentiment word or phrase somewhere in them; the label
// says which. Learnable only by reading the whole text, in any position.
inline void write_corpus(const std::filesystem::path& path, int n, std::uint64_t seed) {
  const std::vector<std::string> filler = {"the", "film", "plot", "actor", "scene", "story",
                                           "was", "and",  "a",    "it",    "of",    "camera"};
  const std::vector<std::string> good = {"wonderful", "great", "superb", "moving"};
  const std::vector<std::string> bad = {"awful", "boring", "terrible", "dull"};
  recur::Rng rng(seed);
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng.below(2));
    const int len = 3 + static_cast<int>(rng.below(25));
    const int at = static_cast<int>(rng.below(static_cast<std::uint64_t>(len)));
    std::string text;
    for (int k = 0; k < len; ++k) {
      const std::string& w =
          k == at ? (label ? good : bad)[rng.below(4)] : filler[rng.below(filler.size())];
      if (k > 0) text += ' ';
      if (k == 0) {
        text += static_cast<char>(std::toupper(w[0]));
        text.append(w, 1);
      } else {
        text += w;
      }
    }
    out << label << '\t' << text << ".<br /><br />\n";
  }
}

// x_, y_ and lengths_ {train, test}.npy in `dir`: sequences of 2 features (12 steps at most)
// whose label is the sign of the sum of the first feature over the real steps (lengths vary);
// the padded steps hold values that would flip many labels if they were read.
inline void write_npy_sequences(const std::filesystem::path& dir, int train, int test,
                                std::uint64_t seed) {
  recur::Rng rng(seed);
  for (const char* side : {"train", "test"}) {
    const int n = std::string(side) == "train" ? train : test, T = 12, F = 2;
    recur::NpyArray x, y, len;
    x.kind = 'f';
    x.item_size = 4;
    x.shape = {n, T, F};
    y.kind = 'i';
    y.item_size = 4;
    y.shape = {n};
    len = y;
    std::vector<float> xs(static_cast<size_t>(n) * T * F, 0.f);
    std::vector<std::int32_t> ys(n), ls(n);
    for (int i = 0; i < n; ++i) {
      ls[i] = 2 + static_cast<int>(rng.below(T - 1));
      double sum = 0;
      for (int t = 0; t < ls[i]; ++t) {
        const double v = rng.normal();
        xs[(static_cast<size_t>(i) * T + t) * F] = static_cast<float>(v);
        xs[(static_cast<size_t>(i) * T + t) * F + 1] = static_cast<float>(rng.normal());
        sum += v;
      }
      for (int t = ls[i]; t < T; ++t) xs[(static_cast<size_t>(i) * T + t) * F] = 5.f;
      ys[i] = sum > 0;
    }
    auto bytes = [](const void* p, size_t size) {
      const auto* b = static_cast<const unsigned char*>(p);
      return std::vector<unsigned char>(b, b + size);
    };
    x.data = bytes(xs.data(), xs.size() * 4);
    y.data = bytes(ys.data(), ys.size() * 4);
    len.data = bytes(ls.data(), ls.size() * 4);
    write_npy((dir / ("x_" + std::string(side) + ".npy")).string(), x);
    write_npy((dir / ("y_" + std::string(side) + ".npy")).string(), y);
    write_npy((dir / ("lengths_" + std::string(side) + ".npy")).string(), len);
  }
}

}  // namespace recur_cli_test
