#include "kernels/cell.hpp"

#include "kernels/activations.hpp"
#include "kernels/dispatch.hpp"
#include "recur/cell.hpp"

namespace recur::kernels {

template <typename T>
[[gnu::always_inline]] inline void rnn_pointwise_forward_impl(bool relu, int B, int H, const T* pre,
                                                              T* h, int ldh, int j0, int j1) {
  if (j1 < 0) j1 = H;
  for (int b = 0; b < B; ++b) {
    const T* p = pre + b * H;
    T* hb = h + b * ldh;
    if (relu) {
      for (int j = j0; j < j1; ++j) hb[j] = p[j] > T(0) ? p[j] : T(0);
    } else {
      for (int j = j0; j < j1; ++j) hb[j] = tanh_act(p[j]);
    }
  }
}

// The backward kernels' rows, with the step's output gradient (kOut: dout + b * ld_out, added
// to dh) or without it (dout null: a step the layer's output gradient does not reach).
template <typename T, bool kOut>
[[gnu::always_inline]] inline void rnn_backward_rows(bool relu, int B, int H, const T* h, int ldh,
                                                     const T* dh, const T* dout, int ld_out,
                                                     T* dpre, int j0, int j1) {
  for (int b = 0; b < B; ++b) {
    const T* hb = h + b * ldh;
    const T* d = dh + b * H;
    const T* e = kOut ? dout + b * ld_out : nullptr;
    T* o = dpre + b * H;
    if (relu) {
      for (int j = j0; j < j1; ++j) o[j] = hb[j] > T(0) ? (kOut ? d[j] + e[j] : d[j]) : T(0);
    } else {
      for (int j = j0; j < j1; ++j) o[j] = (kOut ? d[j] + e[j] : d[j]) * (T(1) - hb[j] * hb[j]);
    }
  }
}

template <typename T>
[[gnu::always_inline]] inline void rnn_pointwise_backward_impl(bool relu, int B, int H, const T* h,
                                                               int ldh, const T* dh, const T* dout,
                                                               int ld_out, T* dpre, int j0,
                                                               int j1) {
  if (j1 < 0) j1 = H;
  if (dout)
    rnn_backward_rows<T, true>(relu, B, H, h, ldh, dh, dout, ld_out, dpre, j0, j1);
  else
    rnn_backward_rows<T, false>(relu, B, H, h, ldh, dh, dout, ld_out, dpre, j0, j1);
}

template <typename T>
[[gnu::always_inline]] inline void lstm_pointwise_forward_impl(int B, int H, T* gates,
                                                               const T* c_prev, T* c, T* h, int ldh,
                                                               int j0, int j1) {
  using namespace lstm_gate;
  if (j1 < 0) j1 = H;
  for (int b = 0; b < B; ++b) {
    T* g = gates + b * kCount * H;
    T* gi = g + kInput * H;
    T* gf = g + kForget * H;
    T* gg = g + kCell * H;
    T* go = g + kOutput * H;
    const T* cp = c_prev + b * H;
    T* cb = c + b * H;
    T* hb = h + b * ldh;
#pragma omp simd
    for (int j = j0; j < j1; ++j) {
      const T i = sigmoid(gi[j]), f = sigmoid(gf[j]), u = tanh_act(gg[j]), o = sigmoid(go[j]);
      gi[j] = i;
      gf[j] = f;
      gg[j] = u;
      go[j] = o;
      const T cn = f * cp[j] + i * u;
      cb[j] = cn;
      hb[j] = o * tanh_act(cn);
    }
  }
}

template <typename T, bool kOut>
[[gnu::always_inline]] inline void lstm_backward_rows(int B, int H, const T* gates, const T* c_prev,
                                                      const T* c, const T* dh, const T* dout,
                                                      int ld_out, T* dc, T* dgates, int j0,
                                                      int j1) {
  using namespace lstm_gate;
  for (int b = 0; b < B; ++b) {
    const T* g = gates + b * kCount * H;
    T* dg = dgates + b * kCount * H;
    const T* cp = c_prev + b * H;
    const T* cb = c + b * H;
    const T* dhb = dh + b * H;
    const T* dob = kOut ? dout + b * ld_out : nullptr;
    T* dcb = dc + b * H;
#pragma omp simd
    for (int j = j0; j < j1; ++j) {
      const T i = g[kInput * H + j], f = g[kForget * H + j], u = g[kCell * H + j],
              o = g[kOutput * H + j];
      const T tc = tanh_act(cb[j]);
      const T dht = kOut ? dhb[j] + dob[j] : dhb[j];
      const T dcj = dcb[j] + dht * o * (T(1) - tc * tc);
      dg[kInput * H + j] = dcj * u * i * (T(1) - i);
      dg[kForget * H + j] = dcj * cp[j] * f * (T(1) - f);
      dg[kCell * H + j] = dcj * i * (T(1) - u * u);
      dg[kOutput * H + j] = dht * tc * o * (T(1) - o);
      dcb[j] = dcj * f;
    }
  }
}

template <typename T>
[[gnu::always_inline]] inline void lstm_pointwise_backward_impl(int B, int H, const T* gates,
                                                                const T* c_prev, const T* c,
                                                                const T* dh, const T* dout,
                                                                int ld_out, T* dc, T* dgates,
                                                                int j0, int j1) {
  if (j1 < 0) j1 = H;
  if (dout)
    lstm_backward_rows<T, true>(B, H, gates, c_prev, c, dh, dout, ld_out, dc, dgates, j0, j1);
  else
    lstm_backward_rows<T, false>(B, H, gates, c_prev, c, dh, dout, ld_out, dc, dgates, j0, j1);
}

template <typename T>
[[gnu::always_inline]] inline void gru_pointwise_forward_impl(int B, int H, T* gates,
                                                              const T* hidden, const T* h_prev,
                                                              int ld_prev, T* h, int ldh, int j0,
                                                              int j1) {
  using namespace gru_gate;
  if (j1 < 0) j1 = H;
  for (int b = 0; b < B; ++b) {
    T* g = gates + b * kCount * H;
    const T* hd = hidden + b * kCount * H;
    const T* hp = h_prev + b * ld_prev;
    T* hb = h + b * ldh;
#pragma omp simd
    for (int j = j0; j < j1; ++j) {
      const T r = sigmoid(g[kReset * H + j] + hd[kReset * H + j]);
      const T z = sigmoid(g[kUpdate * H + j] + hd[kUpdate * H + j]);
      const T n = tanh_act(g[kNew * H + j] + r * hd[kNew * H + j]);
      g[kReset * H + j] = r;
      g[kUpdate * H + j] = z;
      g[kNew * H + j] = n;
      // In this order GCC fuses z h_prev into the addition, fma(z, h_prev, (1 - z) n), as it
      // always has here; written the other way round, the last bit of some h moves.
      hb[j] = z * hp[j] + (T(1) - z) * n;
    }
  }
}

template <typename T, bool kOut>
[[gnu::always_inline]] inline void gru_backward_rows(int B, int H, const T* gates, const T* hidden,
                                                     const T* h_prev, int ld_prev, const T* dh,
                                                     const T* dout, int ld_out, T* dgate_in,
                                                     T* dgate_hid, T* dh_prev, int j0, int j1) {
  using namespace gru_gate;
  for (int b = 0; b < B; ++b) {
    const T* g = gates + b * kCount * H;
    const T* hd = hidden + b * kCount * H;
    const T* hp = h_prev + b * ld_prev;
    const T* d = dh + b * H;
    const T* e = kOut ? dout + b * ld_out : nullptr;
    T* gi = dgate_in + b * kCount * H;
    T* gh = dgate_hid + b * kCount * H;
    T* dp = dh_prev + b * H;
#pragma omp simd
    for (int j = j0; j < j1; ++j) {
      const T r = g[kReset * H + j], z = g[kUpdate * H + j], n = g[kNew * H + j];
      const T dt = kOut ? d[j] + e[j] : d[j];
      const T dn_pre = dt * (T(1) - z) * (T(1) - n * n);
      const T dz_pre = dt * (hp[j] - n) * z * (T(1) - z);
      const T dr_pre = dn_pre * hd[kNew * H + j] * r * (T(1) - r);
      gi[kReset * H + j] = dr_pre;
      gi[kUpdate * H + j] = dz_pre;
      gi[kNew * H + j] = dn_pre;
      gh[kReset * H + j] = dr_pre;
      gh[kUpdate * H + j] = dz_pre;
      gh[kNew * H + j] = dn_pre * r;
      dp[j] = dt * z;
    }
  }
}

template <typename T>
[[gnu::always_inline]] inline void gru_pointwise_backward_impl(
    int B, int H, const T* gates, const T* hidden, const T* h_prev, int ld_prev, const T* dh,
    const T* dout, int ld_out, T* dgate_in, T* dgate_hid, T* dh_prev, int j0, int j1) {
  if (j1 < 0) j1 = H;
  if (dout)
    gru_backward_rows<T, true>(B, H, gates, hidden, h_prev, ld_prev, dh, dout, ld_out, dgate_in,
                               dgate_hid, dh_prev, j0, j1);
  else
    gru_backward_rows<T, false>(B, H, gates, hidden, h_prev, ld_prev, dh, dout, ld_out, dgate_in,
                                dgate_hid, dh_prev, j0, j1);
}

// The entry points: float is compiled per instruction set (kernels/dispatch.hpp), double once.
#define RECUR_CELL_ENTRY(ATTR, T)                                                                  \
  template <>                                                                                      \
  ATTR void rnn_pointwise_forward<T>(bool relu, int B, int H, const T* pre, T* h, int ldh, int j0, \
                                     int j1) {                                                     \
    rnn_pointwise_forward_impl<T>(relu, B, H, pre, h, ldh, j0, j1);                                \
  }                                                                                                \
  template <>                                                                                      \
  ATTR void rnn_pointwise_backward<T>(bool relu, int B, int H, const T* h, int ldh, const T* dh,   \
                                      const T* dout, int ld_out, T* dpre, int j0, int j1) {        \
    rnn_pointwise_backward_impl<T>(relu, B, H, h, ldh, dh, dout, ld_out, dpre, j0, j1);            \
  }                                                                                                \
  template <>                                                                                      \
  ATTR void lstm_pointwise_forward<T>(int B, int H, T* gates, const T* c_prev, T* c, T* h,         \
                                      int ldh, int j0, int j1) {                                   \
    lstm_pointwise_forward_impl<T>(B, H, gates, c_prev, c, h, ldh, j0, j1);                        \
  }                                                                                                \
  template <>                                                                                      \
  ATTR void lstm_pointwise_backward<T>(int B, int H, const T* gates, const T* c_prev, const T* c,  \
                                       const T* dh, const T* dout, int ld_out, T* dc, T* dgates,   \
                                       int j0, int j1) {                                           \
    lstm_pointwise_backward_impl<T>(B, H, gates, c_prev, c, dh, dout, ld_out, dc, dgates, j0, j1); \
  }                                                                                                \
  template <>                                                                                      \
  ATTR void gru_pointwise_forward<T>(int B, int H, T* gates, const T* hidden, const T* h_prev,     \
                                     int ld_prev, T* h, int ldh, int j0, int j1) {                 \
    gru_pointwise_forward_impl<T>(B, H, gates, hidden, h_prev, ld_prev, h, ldh, j0, j1);           \
  }                                                                                                \
  template <>                                                                                      \
  ATTR void gru_pointwise_backward<T>(                                                             \
      int B, int H, const T* gates, const T* hidden, const T* h_prev, int ld_prev, const T* dh,    \
      const T* dout, int ld_out, T* dgate_in, T* dgate_hid, T* dh_prev, int j0, int j1) {          \
    gru_pointwise_backward_impl<T>(B, H, gates, hidden, h_prev, ld_prev, dh, dout, ld_out,         \
                                   dgate_in, dgate_hid, dh_prev, j0, j1);                          \
  }
RECUR_CELL_ENTRY(, double)

RECUR_DISPATCHED(template <>, void, rnn_pointwise_forward<float>, rnn_forward_f,
                 rnn_pointwise_forward_impl<float>,
                 (bool relu, int B, int H, const float* pre, float* h, int ldh, int j0, int j1),
                 (relu, B, H, pre, h, ldh, j0, j1))
RECUR_DISPATCHED(template <>, void, rnn_pointwise_backward<float>, rnn_backward_f,
                 rnn_pointwise_backward_impl<float>,
                 (bool relu, int B, int H, const float* h, int ldh, const float* dh,
                  const float* dout, int ld_out, float* dpre, int j0, int j1),
                 (relu, B, H, h, ldh, dh, dout, ld_out, dpre, j0, j1))
RECUR_DISPATCHED(template <>, void, lstm_pointwise_forward<float>, lstm_forward_f,
                 lstm_pointwise_forward_impl<float>,
                 (int B, int H, float* gates, const float* c_prev, float* c, float* h, int ldh,
                  int j0, int j1),
                 (B, H, gates, c_prev, c, h, ldh, j0, j1))
RECUR_DISPATCHED(template <>, void, lstm_pointwise_backward<float>, lstm_backward_f,
                 lstm_pointwise_backward_impl<float>,
                 (int B, int H, const float* gates, const float* c_prev, const float* c,
                  const float* dh, const float* dout, int ld_out, float* dc, float* dgates, int j0,
                  int j1),
                 (B, H, gates, c_prev, c, dh, dout, ld_out, dc, dgates, j0, j1))
RECUR_DISPATCHED(template <>, void, gru_pointwise_forward<float>, gru_forward_f,
                 gru_pointwise_forward_impl<float>,
                 (int B, int H, float* gates, const float* hidden, const float* h_prev, int ld_prev,
                  float* h, int ldh, int j0, int j1),
                 (B, H, gates, hidden, h_prev, ld_prev, h, ldh, j0, j1))
RECUR_DISPATCHED(template <>, void, gru_pointwise_backward<float>, gru_backward_f,
                 gru_pointwise_backward_impl<float>,
                 (int B, int H, const float* gates, const float* hidden, const float* h_prev,
                  int ld_prev, const float* dh, const float* dout, int ld_out, float* dgate_in,
                  float* dgate_hid, float* dh_prev, int j0, int j1),
                 (B, H, gates, hidden, h_prev, ld_prev, dh, dout, ld_out, dgate_in, dgate_hid,
                  dh_prev, j0, j1))

}  // namespace recur::kernels
