"""Building blocks shared by the models."""
from engine.nn.encoder_totalvi import EncoderOutput, EncoderTOTALVI
from engine.nn.fc import FCStack
from engine.nn.gaussian_decoder import GaussianDecoder
from engine.nn.gradient import grad_neutralize, grad_reverse
