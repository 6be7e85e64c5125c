"""Adaptive quality of interactive frames: hold the frame rate by trading resolution and JPEG
quality, never the settled (lossless) frame.

Each viewport has an :class:`AdaptiveQuality`. It keeps a moving average of what a frame costs
(render + encode + send) and steps along :data:`LEVELS` — coarser when frames take longer than
the budget, finer again when they take well under it. A level renders the same field of view
with ``downscale`` times fewer pixels per side (so the cost of a slab or a 3D frame falls with
its square) and encodes JPEG at ``jpeg_quality``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (downscale, JPEG quality), finest first.
LEVELS: tuple[tuple[float, int], ...] = (
    (1.0, 90), (1.0, 80), (1.5, 80), (2.0, 75), (3.0, 70), (4.0, 65))
INTERACTIVE_FPS = 30.0
_ALPHA = 0.35  # weight of the newest frame in the moving average
_SLOWER = 1.2  # step coarser when the average exceeds the budget by this factor
_FASTER = 0.75  # step finer when the next finer level is predicted to fit this fraction
_SETTLE_FRAMES = 3  # frames to observe after a step before the next one


@dataclass
class AdaptiveQuality:
    """The quality controller of one viewport's interactive stream."""

    target_fps: float = INTERACTIVE_FPS
    level: int = 0
    average_ms: float | None = None
    _since_step: int = 0

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.target_fps

    @property
    def downscale(self) -> float:
        return LEVELS[self.level][0]

    @property
    def jpeg_quality(self) -> int:
        return LEVELS[self.level][1]

    def record(self, frame_ms: float) -> None:
        """Account one delivered interactive frame that cost ``frame_ms`` end to end."""
        self.average_ms = frame_ms if self.average_ms is None else (
            _ALPHA * frame_ms + (1 - _ALPHA) * self.average_ms)
        self._since_step += 1
        if self._since_step < _SETTLE_FRAMES and frame_ms < 3 * self.budget_ms:
            return
        if self.average_ms > _SLOWER * self.budget_ms and self.level < len(LEVELS) - 1:
            self._step(+1)
        elif self.level > 0 and self._since_step >= 2 * _SETTLE_FRAMES \
                and self.predicted_ms(self.level - 1) < _FASTER * self.budget_ms:
            self._step(-1)

    def predicted_ms(self, level: int) -> float:
        """The expected cost of a frame at ``level``: cost scales with the pixel count."""
        assert self.average_ms is not None
        return self.average_ms * (LEVELS[self.level][0] / LEVELS[level][0]) ** 2

    def _step(self, direction: int) -> None:
        # Expect the cost to scale with the pixel count; the next frames correct the guess.
        if self.average_ms is not None:
            self.average_ms = self.predicted_ms(self.level + direction)
        self.level += direction
        self._since_step = 0
