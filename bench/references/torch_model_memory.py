"""PyTorch's peak memory for the steps bench/model-memory.sh gives the trainer: a 5000-10000-10 sigmoid
MLP without biases, float64, summed squared error on a batch of 8 synthetic N(0,1) samples, plain SGD
or Adam, a practitioner's loop (zero_grad, backward, step). The peak RSS is read by the caller."""
import sys

import torch

optimizer_name, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(2)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(5000, 10000, bias=False), torch.nn.Sigmoid(),
                            torch.nn.Linear(10000, 10, bias=False)).double()
x = torch.randn(8, 5000, dtype=torch.float64)
y = torch.randn(8, 10, dtype=torch.float64)
optimizer = (torch.optim.SGD(model.parameters(), lr=1e-5) if optimizer_name == "sgd"
             else torch.optim.Adam(model.parameters(), lr=1e-5))
for _ in range(steps):
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    optimizer.step()
print(f"loss {loss.item():.6g}")
