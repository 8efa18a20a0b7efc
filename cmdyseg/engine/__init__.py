# Copyright (c) cmdyseg contributors. All rights reserved.
from .hooks import ReferSegVisualizationHook

__all__ = ['ReferSegVisualizationHook']
