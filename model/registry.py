from torchlight.registry import Registry

MODELS = Registry('model', removed={
    'exact': "every model now has one implementation, the fastest form of the reference's function "
             '(equal to it in float64, and to reference checkpoints within float32 rounding)',
})
# name → function giving a builder's full arguments without its training-only ones
INFERENCE_ARGS = {}


def register_model(name, inference_args):
    """Register a model builder with the function that drops its training-only arguments (which
    change training, not what the trained model computes)."""
    def add(builder):
        INFERENCE_ARGS[name] = inference_args
        return MODELS.register(name)(builder)
    return add
