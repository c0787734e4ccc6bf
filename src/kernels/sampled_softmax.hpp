// Sampled softmax: the cross-entropy of a large output layer (a language model's next word over
// the whole vocabulary) estimated on the true word and K candidate words shared by every row.
//
//   logits over the candidates:  s[n, k] = h[n] . W[cand[k]] + b[cand[k]] - logq[cand[k]]
//   logit of the true word:      s[n, *] = h[n] . W[t[n]]    + b[t[n]]    - logq[t[n]]
//   loss[n] = -log softmax([s[n, *], s[n, 0..K)])[*]
//
// logq[v] is the log of word v's expected count among the candidates (log(K * q(v)) for K
// draws with replacement from q): subtracting it makes the sampled loss an unbiased estimate of
// the full softmax's gradient direction (the "logQ correction"). A candidate equal to the row's
// true word (an accidental hit) is left out of that row. With the candidates covering the
// vocabulary and logq constant, the loss is the full softmax cross-entropy exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned.hpp"
#include "kernels/packed_gemm.hpp"

namespace recur::kernels {

// A caller's buffers for sampled_softmax_loss, grown as needed and kept from call to call.
template <typename T>
struct SampledSoftmaxScratch {
  std::vector<T> values;  // the candidates' rows, the logits (then their gradients), dW's rows
  // float: the candidates' rows packed for recur's kernels (logits = h x rows^T, dh += dlogits x
  // rows), and the weight-gradient kernel's packing space.
  PackedMatrix rows_t, rows;
  AlignedVector<float> tn;
  std::vector<double> expo;  // one row's exp(logit - max), for its sum and then its gradient
};

// h [N, H], targets [N] (word ids in [0, V)), W [V, H] (row v: word v's output vector), b [V],
// cand [K] (ids in [0, V), repeats allowed), logq [V].
// Returns scale * sum over rows of loss[n]. When dh is non-null: dh [N, H] is ASSIGNED
// scale * d(loss)/dh, and dW [V, H], db [V] get scale * their gradient ADDED (only the rows of
// the candidates and the targets change). `scratch` is grown as needed (no other allocation once
// it has grown). The products run on recur's packed kernels for float, on BLAS for double.
template <typename T>
double sampled_softmax_loss(const T* h, const std::int32_t* targets, int N, int H, const T* W,
                            const T* b, const std::int32_t* cand, int K, const T* logq, T scale,
                            T* dh, T* dW, T* db, SampledSoftmaxScratch<T>& scratch);

// Full softmax cross-entropy of h [N, H] over all V rows of W, b: returns the summed loss (for
// held-out perplexity and as the tests' reference). Blocks of rows keep the logits small.
template <typename T>
double full_softmax_loss(const T* h, const std::int32_t* targets, int N, int H, const T* W,
                         const T* b, int V, std::vector<T>& scratch);

}  // namespace recur::kernels
