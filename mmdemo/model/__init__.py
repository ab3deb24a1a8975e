"""The model: encoders (mmdemo.model.encoders), fusions (fusion), frozen pretrained parts (pretrained), the RNN core (rnn)."""

from mmdemo.model.rnn import FusionRNN, ModelOutput, pick_device

__all__ = ["FusionRNN", "ModelOutput", "pick_device"]
