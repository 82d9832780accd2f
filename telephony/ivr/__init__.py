"""The IVR: a menu tree read from config and the engine that walks a caller through it."""
