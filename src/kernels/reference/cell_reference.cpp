#include "kernels/reference/cell_reference.hpp"

#include <cmath>
#include <vector>

namespace recur::kernels::reference {

namespace {

template <typename T>
T sig(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// a[row] . v over n entries.
template <typename T>
T dot(const T* row, const T* v, int n) {
  T s = 0;
  for (int k = 0; k < n; ++k) s += row[k] * v[k];
  return s;
}

template <typename T>
T bias_at(const T* b, int r) {
  return b ? b[r] : T(0);
}

}  // namespace

template <typename T>
void cell_step_forward(CellKind cell, int B, int I, int H, const T* x, const T* h_prev,
                       const T* c_prev, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                       T* h, T* c) {
  for (int b = 0; b < B; ++b) {
    const T* xb = x + b * I;
    const T* hp = h_prev + b * H;
    for (int j = 0; j < H; ++j) {
      // Input-side and hidden-side pre-activation of gate `gate` for unit j.
      auto in_side = [&](int gate) {
        const int r = gate * H + j;
        return dot(w_ih + r * I, xb, I) + bias_at(b_ih, r);
      };
      auto hid_side = [&](int gate) {
        const int r = gate * H + j;
        return dot(w_hh + r * H, hp, H) + bias_at(b_hh, r);
      };
      switch (cell) {
        case CellKind::rnn_tanh:
          h[b * H + j] = std::tanh(in_side(0) + hid_side(0));
          break;
        case CellKind::rnn_relu: {
          const T p = in_side(0) + hid_side(0);
          h[b * H + j] = p > 0 ? p : T(0);
          break;
        }
        case CellKind::lstm: {
          using namespace lstm_gate;
          const T i = sig(in_side(kInput) + hid_side(kInput));
          const T f = sig(in_side(kForget) + hid_side(kForget));
          const T g = std::tanh(in_side(kCell) + hid_side(kCell));
          const T o = sig(in_side(kOutput) + hid_side(kOutput));
          const T cn = f * c_prev[b * H + j] + i * g;
          c[b * H + j] = cn;
          h[b * H + j] = o * std::tanh(cn);
          break;
        }
        case CellKind::gru: {
          using namespace gru_gate;
          const T r = sig(in_side(kReset) + hid_side(kReset));
          const T z = sig(in_side(kUpdate) + hid_side(kUpdate));
          const T n = std::tanh(in_side(kNew) + r * hid_side(kNew));
          h[b * H + j] = (1 - z) * n + z * hp[j];
          break;
        }
      }
    }
  }
}

template <typename T>
void cell_step_backward(CellKind cell, int B, int I, int H, const T* x, const T* h_prev,
                        const T* c_prev, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                        const T* dh, const T* dc, T* dx, T* dh_prev, T* dc_prev, T* dw_ih, T* dw_hh,
                        T* db_ih, T* db_hh) {
  const int G = gate_count(cell);
  std::vector<T> d_in(static_cast<size_t>(G) * H), d_hid(static_cast<size_t>(G) * H);
  for (int b = 0; b < B; ++b) {
    const T* xb = x + b * I;
    const T* hp = h_prev + b * H;
    for (int k = 0; k < I; ++k) dx[b * I + k] = 0;
    for (int k = 0; k < H; ++k) dh_prev[b * H + k] = 0;
    for (int j = 0; j < H; ++j) {
      auto in_side = [&](int gate) {
        const int r = gate * H + j;
        return dot(w_ih + r * I, xb, I) + bias_at(b_ih, r);
      };
      auto hid_side = [&](int gate) {
        const int r = gate * H + j;
        return dot(w_hh + r * H, hp, H) + bias_at(b_hh, r);
      };
      const T g_h = dh[b * H + j];
      switch (cell) {
        case CellKind::rnn_tanh: {
          const T hv = std::tanh(in_side(0) + hid_side(0));
          d_in[j] = d_hid[j] = g_h * (1 - hv * hv);
          break;
        }
        case CellKind::rnn_relu: {
          const T p = in_side(0) + hid_side(0);
          d_in[j] = d_hid[j] = p > 0 ? g_h : T(0);
          break;
        }
        case CellKind::lstm: {
          using namespace lstm_gate;
          const T i = sig(in_side(kInput) + hid_side(kInput));
          const T f = sig(in_side(kForget) + hid_side(kForget));
          const T g = std::tanh(in_side(kCell) + hid_side(kCell));
          const T o = sig(in_side(kOutput) + hid_side(kOutput));
          const T cp = c_prev[b * H + j];
          const T cn = f * cp + i * g;
          const T tc = std::tanh(cn);
          const T dcn = dc[b * H + j] + g_h * o * (1 - tc * tc);
          d_in[kInput * H + j] = dcn * g * i * (1 - i);
          d_in[kForget * H + j] = dcn * cp * f * (1 - f);
          d_in[kCell * H + j] = dcn * i * (1 - g * g);
          d_in[kOutput * H + j] = g_h * tc * o * (1 - o);
          for (int q = 0; q < G; ++q) d_hid[q * H + j] = d_in[q * H + j];
          dc_prev[b * H + j] = dcn * f;
          break;
        }
        case CellKind::gru: {
          using namespace gru_gate;
          const T r = sig(in_side(kReset) + hid_side(kReset));
          const T z = sig(in_side(kUpdate) + hid_side(kUpdate));
          const T hn = hid_side(kNew);
          const T n = std::tanh(in_side(kNew) + r * hn);
          const T dn = g_h * (1 - z) * (1 - n * n);
          const T dz = g_h * (hp[j] - n) * z * (1 - z);
          const T dr = dn * hn * r * (1 - r);
          d_in[kReset * H + j] = d_hid[kReset * H + j] = dr;
          d_in[kUpdate * H + j] = d_hid[kUpdate * H + j] = dz;
          d_in[kNew * H + j] = dn;
          d_hid[kNew * H + j] = dn * r;
          dh_prev[b * H + j] += g_h * z;
          break;
        }
      }
    }
    // Chain the gate gradients through the weights, one row of each matrix at a time.
    for (int r = 0; r < G * H; ++r) {
      for (int k = 0; k < I; ++k) {
        dx[b * I + k] += d_in[r] * w_ih[r * I + k];
        dw_ih[r * I + k] += d_in[r] * xb[k];
      }
      for (int k = 0; k < H; ++k) {
        dh_prev[b * H + k] += d_hid[r] * w_hh[r * H + k];
        dw_hh[r * H + k] += d_hid[r] * hp[k];
      }
      if (db_ih) db_ih[r] += d_in[r];
      if (db_hh) db_hh[r] += d_hid[r];
    }
  }
}

#define RECUR_INSTANTIATE_REFERENCE(T)                                                            \
  template void cell_step_forward<T>(CellKind, int, int, int, const T*, const T*, const T*,       \
                                     const T*, const T*, const T*, const T*, T*, T*);             \
  template void cell_step_backward<T>(CellKind, int, int, int, const T*, const T*, const T*,      \
                                      const T*, const T*, const T*, const T*, const T*, const T*, \
                                      T*, T*, T*, T*, T*, T*, T*);
RECUR_INSTANTIATE_REFERENCE(float)
RECUR_INSTANTIATE_REFERENCE(double)

}  // namespace recur::kernels::reference
