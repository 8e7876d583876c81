"""Plain implementations of the reference models, written the way the reference code is (per-subset
1×1 convolutions, separate temporal branches, permute + contiguous around SF-Head's gates), with the
reference key names: the tests' second implementations and the benchmark's baseline
(tools/benchmark.py)."""
import torch


def randomise(model, seed=0):
    """Random weights and BN statistics of realistic scale (outputs of order 1), so that an equality
    test sees every parameter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point or name.endswith('.A') or name == 'A':
                continue
            uniform = torch.rand(tensor.shape, generator=generator)
            if name.endswith(('running_var', 'importance')) or (name.endswith('weight')
                                                                 and tensor.dim() == 1):
                tensor.copy_(0.5 + uniform)                                # scales around 1
            elif tensor.dim() > 1:
                fan_in = tensor[0].numel()
                tensor.copy_((uniform - 0.5) * 2 * (3 / fan_in) ** 0.5)   # variance 1 / fan_in
            else:
                tensor.copy_((uniform - 0.5) * 0.2)                        # biases, running means
    return model


def calibrate_batch_norms(model, shape):
    """Running statistics measured on random input, as training leaves them: activations of order 1
    through every block (with arbitrary statistics they grow ~2x per block, beyond float32's
    1e-5)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None                    # cumulative average
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(torch.randn(shape, generator=torch.Generator().manual_seed(seed)))
    return model.eval()
