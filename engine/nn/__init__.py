"""Building blocks shared by the models."""
from engine.nn.fc import FCStack
from engine.nn.gradient import grad_neutralize, grad_reverse
