"""EEBUS JSON: the streaming reader and writer of the SPINE dialect (native: their viper code).
May import the ground floor only; imported by spine, usecases and gateway."""
