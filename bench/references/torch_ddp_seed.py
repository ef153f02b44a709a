"""The seed job under PyTorch DistributedDataParallel: W processes (default 2) on loopback, gloo.

Each rank holds its contiguous shard of the batch (32 samples each for the seed's 64 with W=2)
and the same initial weights; DDP all-reduces the gradients during backward (autograd is needed
for its hooks). NOTE: DDP AVERAGES gradients over ranks, while the seed's loss is a SUM over
samples, so each rank back-propagates W x its shard's summed loss: the update then equals the
single-process update on the whole batch. The reported loss is the full-batch sum (all-reduced).
Timed: rank 0's wall time of the training loop, from a barrier to the end of the last step.
Threads: nproc // W torch threads per rank unless --threads, so ranks do not oversubscribe cores.
Usage: /usr/bin/python3 torch_ddp_seed.py [--world 2] [--port P] [--model ... --batch ... --steps ... --precision ...]
"""
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common import default_name, emit, parse_args, seed_arrays


def options(p):
    p.add_argument("--world", type=int, default=2, help="processes (ranks)")
    p.add_argument("--port", type=int, default=0, help="rendezvous port on 127.0.0.1 (0 = a free one)")
    p.add_argument("--threads", type=int, default=0, help="torch threads per rank (0 = nproc // world)")


class SeedMlp(nn.Module):
    """Bias-free linear layers with sigmoid between them, column layout: y = w_L·σ(...σ(w_1·x))."""

    def __init__(self, ws):
        super().__init__()
        self.ws = nn.ParameterList(nn.Parameter(torch.from_numpy(w).clone()) for w in ws)

    def forward(self, x):
        a = x
        for w in self.ws[:-1]:
            a = torch.sigmoid(w @ a)
        return self.ws[-1] @ a


def run(rank, args, port, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // args.world))
    dist.init_process_group("gloo", rank=rank, world_size=args.world)
    x, y, ws = seed_arrays(args)            # same draw on every rank: same data, same init
    per = args.batch // args.world
    lo, hi = rank * per, (rank + 1) * per if rank < args.world - 1 else args.batch
    x, y = torch.from_numpy(x[:, lo:hi].copy()), torch.from_numpy(y[:, lo:hi].copy())
    model = DistributedDataParallel(SeedMlp(ws))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    total = torch.zeros(1, dtype=torch.float64)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        diff = model(x) - y
        loss = (diff * diff).sum()
        opt.zero_grad(set_to_none=True)
        (loss * args.world).backward()      # see the NOTE above: undo DDP's averaging
        opt.step()
        total[0] = loss.item()
    dist.all_reduce(total)                  # full-batch loss of the last step (also a final sync)
    seconds = time.perf_counter() - start
    if rank == 0:
        queue.put((seconds, float(total[0]), torch.get_num_threads()))
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    args = parse_args(__doc__, options)
    if args.world < 1 or args.world > args.batch:
        raise SystemExit("--world must be between 1 and the batch size")
    port = args.port or free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.spawn(run, args=(args, port, queue), nprocs=args.world, join=True)
    seconds, loss, threads = queue.get()
    emit(args.name or default_name(f"torch DDP gloo {args.world} processes", args), args, seconds, loss,
         world=args.world, threads_per_rank=threads, backend="gloo", torch=torch.__version__)


if __name__ == "__main__":
    main()
