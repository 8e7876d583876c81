from torchlight.registry import Registry

MODELS = Registry('model')
register_model = MODELS.register
