// The tutorial's second example (SEED.md section 2), line for line with PyTorch:
//
//   x = torch.tensor([5.0, 7.0], requires_grad=True)
//   y = x**2;  loss1 = y.mean()
//   h1 = grad(y[0], x, retain_graph=True, create_graph=True)   # [2·x0, 0]
//   h2 = grad(y[1], x, retain_graph=True, create_graph=True)   # [0, 2·x1]
//   loss2 = (h1 - h2).mean()                                   # x0 - x1, still differentiable
//   grad(loss1 + loss2, x)                                     # (tensor([6., 6.]),)
//
// h1 and h2 are gradients that are themselves in the graph (createGraph), so the last line
// differentiates through them: d(mean(x²))/dx + d(x0 - x1)/dx = [5, 7] + [1, -1] = [6, 6].
using Trainer.Core.Autograd;

var x = Tensor.Vector([5.0, 7.0], requiresGrad: true);
var y = x.Pow(2);
var loss1 = y.Mean();

var h1 = Autograd.Grad(y[0], x, retainGraph: true, createGraph: true);
var h2 = Autograd.Grad(y[1], x, retainGraph: true, createGraph: true);
var loss2 = (h1 - h2).Mean();
var loss = loss1 + loss2;

Console.WriteLine($"loss1 = {loss1}, h1 = {h1}, h2 = {h2}, loss2 = {loss2}");
Console.WriteLine(Autograd.Grad(loss, x));
