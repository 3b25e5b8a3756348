"""The fused MLP kernel: forward, loss, backward and per-layer statistics in one call.

Notation for hidden layer l with input h (batch B x fan_in):
    z = h W + b                                   (pre-activation)
    y = gamma * (z - mu) / sqrt(var + eps) + beta (batch norm, training mode) else y = z
    a = phi(y);  out = h + a if residual and fan_in == fan_out else a
Output: logits = h W_out + b_out; loss = mean softmax cross-entropy or mean squared error.
Backward (delta = dL/dz, the quantity vanishing-gradient theory is about):
    dL/dy = dL/dout * phi'(y);  delta = BN-backward(dL/dy) or dL/dy
    dW = h^T delta;  db = sum_batch delta;  dL/dh = delta W^T (+ dL/dout if residual)

Layer table columns (int64, one row per layer, hidden layers then output):
    W, b, gamma, beta, alpha offsets (-1 when absent), fan_in, fan_out, residual.
"""

from __future__ import annotations

import numpy as np
from gradtui.engine.jit import kernel

from gradtui.engine.activations import PRELU, activate

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
COL_W, COL_B, COL_GAMMA, COL_BETA, COL_ALPHA, COL_FAN_IN, COL_FAN_OUT, COL_RESIDUAL = range(8)



@kernel
def _matrix(flat, offset, rows, cols):
    return flat[offset : offset + rows * cols].reshape((rows, cols))


@kernel
def _batchnorm_forward(Z, ZH, inv_std, gamma, beta, running_mean, running_var, train, use_running):
    """Normalise Z per unit in place: ZH = (Z - mu)/sqrt(var + eps), Z = gamma*ZH + beta."""
    n, m = Z.shape
    for j in range(m):
        if use_running:
            mu = running_mean[j]
            var = running_var[j]
        else:
            s = 0.0
            for i in range(n):
                s += Z[i, j]
            mu = s / n
            ss = 0.0
            for i in range(n):
                d = Z[i, j] - mu
                ss += d * d
            var = ss / n
            if train:
                unbiased = ss / (n - 1) if n > 1 else var
                running_mean[j] = (1.0 - BN_MOMENTUM) * running_mean[j] + BN_MOMENTUM * mu
                running_var[j] = (1.0 - BN_MOMENTUM) * running_var[j] + BN_MOMENTUM * unbiased
        r = 1.0 / np.sqrt(var + BN_EPS)
        inv_std[j] = r
        for i in range(n):
            zh = (Z[i, j] - mu) * r
            ZH[i, j] = zh
            Z[i, j] = gamma[j] * zh + beta[j]


@kernel
def _batchnorm_backward(DY, ZH, inv_std, gamma, dgamma, dbeta, DZ):
    """dz = (inv_std/B) * (B*g - sum(g) - zh*sum(g*zh)) with g = gamma*dL/dy; also dgamma, dbeta."""
    n, m = DY.shape
    for j in range(m):
        sg = 0.0
        sgz = 0.0
        dgm = 0.0
        dbt = 0.0
        for i in range(n):
            dy = DY[i, j]
            dgm += dy * ZH[i, j]
            dbt += dy
        dgamma[j] = dgm
        dbeta[j] = dbt
        sg = gamma[j] * dbt
        sgz = gamma[j] * dgm
        scale = inv_std[j] / n
        for i in range(n):
            DZ[i, j] = scale * (n * gamma[j] * DY[i, j] - sg - ZH[i, j] * sgz)


@kernel
def _output_stats(A, out_mean, out_std, idx):
    """Mean and population standard deviation of all elements of A."""
    n, m = A.shape
    s = 0.0
    ss = 0.0
    for i in range(n):
        for j in range(m):
            v = np.float64(A[i, j])
            s += v
            ss += v * v
    count = n * m
    mean = s / count
    out_mean[idx] = mean
    out_std[idx] = np.sqrt(max(ss / count - mean * mean, 0.0))


@kernel
def _layer_stats(H, D, sat_limit, alive, act_mean, act_std, dead, saturation, idx):
    """One pass over a hidden layer's output H and its phi' D:
    act_mean, act_std of H; dead = share of units with phi' == 0 on the whole batch;
    saturation = share of elements with phi' < sat_limit."""
    n, m = D.shape
    alive[:m] = 0
    s = 0.0
    ss = 0.0
    n_sat = 0
    for i in range(n):
        for j in range(m):
            v = np.float64(H[i, j])
            d = D[i, j]
            s += v
            ss += v * v
            alive[j] |= d != 0.0
            n_sat += d < sat_limit
    count = n * m
    mean = s / count
    act_mean[idx] = mean
    act_std[idx] = np.sqrt(max(ss / count - mean * mean, 0.0))
    n_dead = 0
    for j in range(m):
        n_dead += alive[j] == 0
    dead[idx] = n_dead / m
    saturation[idx] = n_sat / count


@kernel
def _loss_and_dlogits(logits, y_class, y_value, classification, dlogits):
    """Mean softmax cross-entropy (or mean squared error) and its gradient wrt the logits."""
    n, k = logits.shape
    loss = 0.0
    if classification:
        for i in range(n):
            mx = logits[i, 0]
            for c in range(1, k):
                mx = max(mx, logits[i, c])
            s = 0.0
            for c in range(k):
                s += np.exp(logits[i, c] - mx)
            log_s = np.log(s)
            loss += mx + log_s - logits[i, y_class[i]]
            for c in range(k):
                dlogits[i, c] = np.exp(logits[i, c] - mx - log_s) / n
            dlogits[i, y_class[i]] -= 1.0 / n
        return loss / n
    for i in range(n):
        for c in range(k):
            d = logits[i, c] - y_value[i, c]
            loss += d * d
            dlogits[i, c] = 2.0 * d / (n * k)
    return loss / (n * k)


@kernel
def _bias_grad_and_norm(DZ, db):
    """db[j] = sum_i DZ[i, j]; returns ||DZ||_F. One row-major pass, no temporary."""
    db[:] = 0.0
    ss = 0.0
    for i in range(DZ.shape[0]):
        for j in range(DZ.shape[1]):
            v = DZ[i, j]
            db[j] += v
            w = np.float64(v)  # squared in float64 so tiny float32 errors do not underflow
            ss += w * w
    return np.sqrt(ss)


@kernel
def _delta(dH, D, DZ, db):
    """DZ = dH * phi' (the back-propagated error at z), db = its column sums; returns ||DZ||_F."""
    db[:] = 0.0
    ss = 0.0
    for i in range(DZ.shape[0]):
        for j in range(DZ.shape[1]):
            v = dH[i, j] * D[i, j]
            DZ[i, j] = v
            db[j] += v
            w = np.float64(v)
            ss += w * w
    return np.sqrt(ss)


@kernel
def mlp_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                Z, ZH, D, H, inv_std, running_mean, running_var, logits,
                train, use_running, stats, act_mean, act_std, dead, saturation):
    """Forward pass; fills the workspace, the logits and (when ``stats``) the activation statistics."""
    depth = H.shape[0]
    dummy = theta[0:0]
    alive = np.zeros(H.shape[2], np.uint8)
    for l in range(depth):
        fan_in = table[l, COL_FAN_IN]
        fan_out = table[l, COL_FAN_OUT]
        h = x if l == 0 else H[l - 1]
        W = _matrix(theta, table[l, COL_W], fan_in, fan_out)
        np.dot(h, W, Z[l])
        b = theta[table[l, COL_B] : table[l, COL_B] + fan_out]
        Z[l] += b
        if batchnorm:
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            beta = theta[table[l, COL_BETA] : table[l, COL_BETA] + fan_out]
            _batchnorm_forward(Z[l], ZH[l], inv_std[l], gamma, beta, running_mean[l], running_var[l], train, use_running)
        alpha = theta[table[l, COL_ALPHA] : table[l, COL_ALPHA] + fan_out] if act == PRELU else dummy
        activate(act, Z[l], H[l], D[l], slope, alpha, elu_alpha, exact)
        if table[l, COL_RESIDUAL]:
            H[l] += h
        if stats:
            _layer_stats(H[l], D[l], sat_limit, alive, act_mean, act_std, dead, saturation, l)
    fan_in = table[depth, COL_FAN_IN]
    fan_out = table[depth, COL_FAN_OUT]
    W = _matrix(theta, table[depth, COL_W], fan_in, fan_out)
    np.dot(H[depth - 1], W, logits)
    logits += theta[table[depth, COL_B] : table[depth, COL_B] + fan_out]
    if stats:
        _output_stats(logits, act_mean, act_std, depth)
        dead[depth] = 0.0
        saturation[depth] = 0.0


@kernel
def mlp_backward(theta, grad, table, x, act, batchnorm, Z, ZH, D, H, inv_std,
                 dlogits, dH, dH_next, DZ, stats, delta_norm):
    """Back-propagate dlogits; writes every parameter's gradient into ``grad``."""
    depth = H.shape[0]
    fan_in = table[depth, COL_FAN_IN]
    fan_out = table[depth, COL_FAN_OUT]
    W = _matrix(theta, table[depth, COL_W], fan_in, fan_out)
    np.dot(H[depth - 1].T, dlogits, _matrix(grad, table[depth, COL_W], fan_in, fan_out))
    norm = _bias_grad_and_norm(dlogits, grad[table[depth, COL_B] : table[depth, COL_B] + fan_out])
    if stats:
        delta_norm[depth] = norm
    np.dot(dlogits, W.T, dH)
    for l in range(depth - 1, -1, -1):
        fan_in = table[l, COL_FAN_IN]
        fan_out = table[l, COL_FAN_OUT]
        h = x if l == 0 else H[l - 1]
        db = grad[table[l, COL_B] : table[l, COL_B] + fan_out]
        if act == PRELU:
            # a = alpha*y for y <= 0, so da/dalpha_j = min(y, 0)
            dalpha = grad[table[l, COL_ALPHA] : table[l, COL_ALPHA] + fan_out]
            dalpha[:] = 0.0
            Y = Z[l]
            for i in range(Y.shape[0]):
                for j in range(fan_out):
                    if Y[i, j] <= 0.0:
                        dalpha[j] += dH[i, j] * Y[i, j]
        if batchnorm:
            DY = dH_next  # scratch: dL/dy before the BN backward
            np.multiply(dH, D[l], DY)
            gamma = theta[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            dgamma = grad[table[l, COL_GAMMA] : table[l, COL_GAMMA] + fan_out]
            dbeta = grad[table[l, COL_BETA] : table[l, COL_BETA] + fan_out]
            _batchnorm_backward(DY, ZH[l], inv_std[l], gamma, dgamma, dbeta, DZ)
            norm = _bias_grad_and_norm(DZ, db)
        else:
            norm = _delta(dH, D[l], DZ, db)
        if stats:
            delta_norm[l] = norm
        np.dot(h.T, DZ, _matrix(grad, table[l, COL_W], fan_in, fan_out))
        if l > 0:
            W = _matrix(theta, table[l, COL_W], fan_in, fan_out)
            np.dot(DZ, W.T, dH_next)
            if table[l, COL_RESIDUAL]:
                dH_next += dH
            dH, dH_next = dH_next, dH


@kernel
def mlp_step(theta, grad, table, x, y_class, y_value, classification, act, slope, elu_alpha,
             batchnorm, exact, sat_limit, Z, ZH, D, H, inv_std, running_mean, running_var,
             logits, dlogits, dH, dH_next, DZ, train, stats,
             act_mean, act_std, dead, saturation, delta_norm):
    """Forward, loss and backward in one call (the GIL is released throughout). Returns the loss."""
    mlp_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, sat_limit,
                Z, ZH, D, H, inv_std, running_mean, running_var, logits,
                train, False, stats, act_mean, act_std, dead, saturation)
    loss = _loss_and_dlogits(logits, y_class, y_value, classification, dlogits)
    mlp_backward(theta, grad, table, x, act, batchnorm, Z, ZH, D, H, inv_std,
                 dlogits, dH, dH_next, DZ, stats, delta_norm)
    return loss


@kernel
def mlp_evaluate(theta, table, x, y_class, y_value, classification, act, slope, elu_alpha,
                 batchnorm, exact, Z, ZH, D, H, inv_std, running_mean, running_var, logits, dlogits):
    """Loss and number of correct predictions, batch norm using its running statistics."""
    empty = np.zeros(1)
    mlp_forward(theta, table, x, act, slope, elu_alpha, batchnorm, exact, 0.0,
                Z, ZH, D, H, inv_std, running_mean, running_var, logits,
                False, True, False, empty, empty, empty, empty)
    loss = _loss_and_dlogits(logits, y_class, y_value, classification, dlogits)
    correct = 0
    if classification:
        for i in range(logits.shape[0]):
            if np.argmax(logits[i]) == y_class[i]:
                correct += 1
    return loss, correct
