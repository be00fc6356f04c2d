"""The peer DKT implementations of benchmarks/kt_assist2009.py (`pip install juno-dkt EduKTM`): their
own model code and training loops, one epoch per call so the same early stopping applies; we only
encode windows as their one-hot inputs and read their outputs at the next skill."""
from __future__ import annotations

import resource
import time

import numpy as np


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Peer:
    """Window encoding, early stopping and scoring around a peer's own model and training loop."""

    def __init__(self, name, n_skills, window=200):
        self.name, self.n, self.window = name, n_skills, window

    def onehot(self, items, resp, correct_first: bool):
        import torch

        x = torch.zeros(len(items), 2 * self.n)
        s = torch.as_tensor(items - 1)
        r = torch.as_tensor(resp).long()
        # juno: [correct one-hot | wrong one-hot]; EduKTM: index skill + correct * n
        off = (1 - r) * self.n if correct_first else r * self.n
        x[torch.arange(len(items)), s + off] = 1
        return x

    def probs(self, logs):
        """Same windows and scored positions as edu-flash's evaluation."""
        import torch

        from edu_flash.path.data import eval_windows

        ys, ps = [], []
        with torch.inference_mode():
            for it, c in zip(logs.items, logs.correct):
                for a, e, f in eval_windows(len(it), self.window, self.window // 2):
                    out = self.forward(self.onehot(it[a:e], c[a:e], self.correct_first))  # [L, n]
                    idx = torch.arange(f - a, e - a)
                    ps.append(out[idx - 1, torch.as_tensor(it[a:e][f - a:] - 1)].numpy())
                    ys.append(c[f:e])
        return np.concatenate(ys), np.concatenate(ps)


class Juno(Peer):
    correct_first = True

    def __init__(self, n_skills, hidden=200, batch_size=64, lr=2e-3):
        super().__init__("juno-dkt", n_skills)
        from juno_dkt import DKT

        self.model = DKT(n_hidden=hidden, batch_size=batch_size, lr=lr)

    def epoch(self, windows):
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            self.model.fit(self.batches(windows), n_iter=1)

    def batches(self, windows):
        return [self.onehot(i, r, True) for i, r in windows]

    def forward(self, x):
        self.model.eval()
        return self.model(x.unsqueeze(1))[:, 0]


class EduKTMDKT(Peer):
    correct_first = False

    def __init__(self, n_skills, hidden=200, batch_size=64, lr=2e-3):
        super().__init__("EduKTM DKT", n_skills)
        from EduKTM import DKT

        self.model, self.bs, self.lr = DKT(n_skills, hidden, 1), batch_size, lr

    def epoch(self, windows):
        import contextlib
        import io
        import random

        import torch

        order = list(range(len(windows)))
        random.Random(len(windows)).shuffle(order)
        loader = [torch.nn.utils.rnn.pad_sequence([self.onehot(*windows[j], False) for j in order[k:k + self.bs]],
                                                  batch_first=True) for k in range(0, len(order), self.bs)]
        self.model.dkt_model.train()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            self.model.train(loader, epoch=1, lr=self.lr)

    def forward(self, x):
        self.model.dkt_model.eval()
        return self.model.dkt_model(x.unsqueeze(0))[0]


def run_peer(cls, train, val, test, n_skills, args):
    from sklearn.metrics import roc_auc_score

    from edu_flash.path.data import train_windows

    peer = cls(n_skills)
    windows = train_windows(train, 200)
    best, bad, epochs, state = -1.0, 0, 0, None
    t0, c0 = time.perf_counter(), cpu_s()
    import copy

    net = peer.model if isinstance(peer, Juno) else peer.model.dkt_model
    for ep in range(args.peer_max_epochs):
        peer.epoch(windows)
        epochs += 1
        y, p = peer.probs(val)
        auc = roc_auc_score(y, p)
        if auc > best:
            best, bad, state = auc, 0, copy.deepcopy(net.state_dict())
        else:
            bad += 1
            if bad >= args.patience:
                break
    train_s, train_cpu = time.perf_counter() - t0, cpu_s() - c0
    net.load_state_dict(state)
    y, p = peer.probs(test)
    return {"model": peer.name, "auc": float(roc_auc_score(y, p)), "acc": float(((p >= .5) == (y == 1)).mean()),
            "rmse": float(np.sqrt(((p - y) ** 2).mean())), "responses": int(len(y)), "train_s": round(train_s, 1),
            "train_cpu_s": round(train_cpu, 1), "epochs": epochs, "best_val_auc": best}
