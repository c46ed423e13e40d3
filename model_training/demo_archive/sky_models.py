"""Sky models of the demo archive: one small function per morphology class.

The paper's similarity search is judged by astronomers on morphologies they know
(a protostar with outflows such as HH 212, strongly lensed galaxies such as
SPT2145-40). The synthetic archive therefore draws its sources from those
classes, each a fixed physical model: an intrinsic size, an inclination, a
position angle on the sky and a sub-structure drawn from the source's seed, plus
a line-of-sight velocity field, so that the peak-flux (moment 8) map of a line
cube shows the morphology as it does for real ALMA cubes.

A sky model is evaluated on sky offsets from the source centre, in arcsec, with
``x`` towards the east and ``y`` towards the north; position angles are
measured from north through east, as in astronomy. Brightness is relative: the
observation scales it to the flux it wants.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

POINT_SOURCE = "point_source"
INCLINED_DISC = "inclined_disc"
RING_GAP_DISC = "ring_gap_disc"
SPIRAL = "spiral"
BIPOLAR_OUTFLOW = "bipolar_outflow"
LENSED = "lensed"
CLUMPY_MULTIPLE = "clumpy_multiple"
FILAMENT = "filament"


@dataclass(frozen=True)
class Component:
    """One emitting part of a source with its own line-of-sight velocity.

    Parameters
    ----------
    brightness : numpy.ndarray
        Relative surface brightness sampled on the pixel grid.
    velocity : numpy.ndarray or float
        Line-of-sight velocity in km/s relative to the source's systemic
        velocity: a map where the part moves (rotation, outflow), a number
        where it moves as a whole (a clump, a knot).
    continuum : float
        Weight in a continuum image: outflow lobes, for instance, are bright
        in CO lines but faint in dust continuum.
    line : float
        Weight in a line cube.
    """

    brightness: np.ndarray
    velocity: np.ndarray | float = 0.0
    continuum: float = 1.0
    line: float = 1.0


Emission = Callable[[np.ndarray, np.ndarray, float], list[Component]]
"""Evaluate a source on sky offsets ``(x_east, y_north, pixel_scale)`` in arcsec."""


@dataclass(frozen=True)
class SkyModel:
    """A source as it is on the sky, independent of any observation.

    Parameters
    ----------
    morphology_class : str
        One of `MORPHOLOGY_CLASSES`.
    extent : float
        Outer radius of the emission in arcsec; the observations choose their
        restoring beams relative to it, from well resolved to barely resolved.
    velocity_extent : float
        Largest line-of-sight speed in km/s, so that a cube's channels can
        cover the whole line.
    line_dispersion : float
        Local (thermal and turbulent) velocity dispersion in km/s.
    emission : Emission
        The brightness and velocity of the source's components on a grid.
    """

    morphology_class: str
    extent: float
    velocity_extent: float
    line_dispersion: float
    emission: Emission


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _gaussian(distance: np.ndarray, width: float, pixel_scale: float) -> np.ndarray:
    """Gaussian profile whose width never falls below half a pixel.

    Widening features narrower than the pixel grid avoids aliasing them away;
    the restoring beam (five pixels across its minor axis) hides the change.
    """
    sigma = np.hypot(width, 0.5 * pixel_scale)
    return np.exp(-0.5 * (distance / sigma) ** 2)


def _along_across(
    x: np.ndarray, y: np.ndarray, position_angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate sky offsets into the frame of an axis at ``position_angle`` (radians)."""
    along = x * np.sin(position_angle) + y * np.cos(position_angle)
    across = x * np.cos(position_angle) - y * np.sin(position_angle)
    return along, across


def _disc_plane(
    x: np.ndarray, y: np.ndarray, position_angle: float, inclination: float
) -> tuple[np.ndarray, np.ndarray]:
    """Radius and azimuth in the plane of a thin inclined disc.

    The azimuth is zero along the receding half of the major axis, so the
    line-of-sight velocity of a rotating disc is ``v(r) sin(i) cos(azimuth)``.
    """
    along, across = _along_across(x, y, position_angle)
    across = across / np.cos(inclination)
    return np.hypot(along, across), np.arctan2(across, along)


def _inclination(rng: np.random.Generator, cos_low: float, cos_high: float) -> float:
    """Inclination of a randomly oriented disc, limited to a range of ``cos i``."""
    return float(np.arccos(rng.uniform(cos_low, cos_high)))


def _keplerian_velocity(
    radius: np.ndarray, azimuth: np.ndarray, inner_radius: float, speed: float, inclination: float
) -> np.ndarray:
    """Line-of-sight velocity of a Keplerian disc, ``speed`` at ``inner_radius``."""
    rotation = speed * np.sqrt(inner_radius / np.maximum(radius, inner_radius))
    return rotation * np.sin(inclination) * np.cos(azimuth)


def _self_similar_disc(radius: np.ndarray, critical_radius: float, gamma: float) -> np.ndarray:
    """Lynden-Bell & Pringle (1974) surface density, the standard protoplanetary profile."""
    scaled = np.maximum(radius / critical_radius, 1e-3)
    return scaled**-gamma * np.exp(-(scaled ** (2.0 - gamma)))


def point_source(rng: np.random.Generator) -> SkyModel:
    """Draw an unresolved source: a quasar, a distant galaxy, a compact protostar."""
    extent = _log_uniform(rng, 1.0, 6.0)
    size = 0.015 * extent

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        return [Component(_gaussian(np.hypot(x, y), size, pixel_scale))]

    return SkyModel(POINT_SOURCE, extent, 0.0, _log_uniform(rng, 0.5, 50.0), emission)


def inclined_disc(rng: np.random.Generator) -> SkyModel:
    """Draw a smooth protoplanetary disc, clearly inclined, in Keplerian rotation."""
    extent = _log_uniform(rng, 2.0, 6.0)
    critical_radius = extent * rng.uniform(0.25, 0.45)
    gamma = rng.uniform(0.5, 1.0)
    position_angle = rng.uniform(0.0, 2.0 * np.pi)
    inclination = _inclination(rng, 0.1, 0.8)
    speed = rng.uniform(3.0, 12.0)
    inner_radius = 0.1 * extent

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        radius, azimuth = _disc_plane(x, y, position_angle, inclination)
        radius = np.hypot(radius, 0.5 * pixel_scale)
        brightness = _self_similar_disc(radius, critical_radius, gamma)
        velocity = _keplerian_velocity(radius, azimuth, inner_radius, speed, inclination)
        return [Component(brightness, velocity)]

    velocity_extent = speed * np.sin(inclination)
    return SkyModel(INCLINED_DISC, extent, velocity_extent, rng.uniform(0.2, 0.6), emission)


def ring_gap_disc(rng: np.random.Generator) -> SkyModel:
    """Draw a protoplanetary disc with bright rings and dark gaps (HL Tau, DSHARP discs).

    Some of them are transition discs with an inner dust cavity.
    """
    extent = _log_uniform(rng, 2.0, 5.0)
    critical_radius = extent * rng.uniform(0.3, 0.5)
    gamma = rng.uniform(0.3, 0.9)
    position_angle = rng.uniform(0.0, 2.0 * np.pi)
    inclination = _inclination(rng, 0.35, 1.0)
    speed = rng.uniform(3.0, 12.0)
    inner_radius = 0.1 * extent
    n_rings = int(rng.integers(1, 5))
    ring_radii = np.sort(rng.uniform(0.3, 0.9, n_rings)) * extent
    ring_widths = rng.uniform(0.03, 0.1, n_rings) * extent
    ring_contrasts = rng.uniform(1.0, 5.0, n_rings)
    gap_radii = ring_radii - rng.uniform(0.08, 0.2, n_rings) * extent
    gap_widths = rng.uniform(0.02, 0.08, n_rings) * extent
    gap_depths = rng.uniform(0.6, 0.98, n_rings)
    cavity_radius = rng.uniform(0.1, 0.35) * extent if rng.random() < 0.4 else 0.0

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        radius, azimuth = _disc_plane(x, y, position_angle, inclination)
        radius = np.hypot(radius, 0.5 * pixel_scale)
        base = _self_similar_disc(radius, critical_radius, gamma)
        brightness = base.copy()
        for gap_radius, width, depth in zip(gap_radii, gap_widths, gap_depths, strict=True):
            brightness *= 1.0 - depth * _gaussian(radius - gap_radius, width, pixel_scale)
        for ring_radius, width, contrast in zip(
            ring_radii, ring_widths, ring_contrasts, strict=True
        ):
            ring_level = _self_similar_disc(np.asarray(ring_radius), critical_radius, gamma)
            brightness += (
                contrast * ring_level * _gaussian(radius - ring_radius, width, pixel_scale)
            )
        if cavity_radius > 0.0:
            brightness *= 1.0 - np.exp(-((radius / cavity_radius) ** 4))
        velocity = _keplerian_velocity(radius, azimuth, inner_radius, speed, inclination)
        return [Component(brightness, velocity)]

    velocity_extent = speed * np.sin(inclination)
    return SkyModel(RING_GAP_DISC, extent, velocity_extent, rng.uniform(0.2, 0.6), emission)


def spiral(rng: np.random.Generator) -> SkyModel:
    """Draw a nearby spiral galaxy: exponential disc, log arms, bulge, flat rotation curve."""
    extent = _log_uniform(rng, 3.0, 10.0)
    scale_length = extent * rng.uniform(0.25, 0.4)
    n_arms = int(rng.choice([2, 2, 2, 3, 4]))
    pitch_angle = np.radians(rng.uniform(10.0, 35.0))
    arm_phase = rng.uniform(0.0, 2.0 * np.pi)
    arm_contrast = rng.uniform(1.5, 5.0)
    arm_sharpness = rng.uniform(2.0, 6.0)
    bulge_radius = extent * rng.uniform(0.04, 0.1)
    bulge_weight = rng.uniform(0.3, 2.0)
    position_angle = rng.uniform(0.0, 2.0 * np.pi)
    inclination = _inclination(rng, 0.4, 1.0)
    speed = rng.uniform(100.0, 300.0)
    turnover_radius = extent * rng.uniform(0.08, 0.2)

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        radius, azimuth = _disc_plane(x, y, position_angle, inclination)
        radius = np.hypot(radius, 0.5 * pixel_scale)
        winding = np.log(radius / scale_length) / np.tan(pitch_angle)
        arms = (0.5 * (1.0 + np.cos(n_arms * (azimuth - winding) - arm_phase))) ** arm_sharpness
        brightness = np.exp(-radius / scale_length) * (1.0 + arm_contrast * arms)
        brightness += bulge_weight * _gaussian(radius, bulge_radius, pixel_scale)
        rotation = speed * (1.0 - np.exp(-radius / turnover_radius))
        velocity = rotation * np.sin(inclination) * np.cos(azimuth)
        return [Component(brightness, velocity)]

    velocity_extent = speed * np.sin(inclination)
    return SkyModel(SPIRAL, extent, velocity_extent, rng.uniform(10.0, 25.0), emission)


def bipolar_outflow(rng: np.random.Generator) -> SkyModel:
    """Draw a protostar with two outflow lobes: cavity walls and jet knots (like HH 212).

    The lobes follow a Hubble law, their speed growing with distance from the
    protostar, red-shifted on one side and blue-shifted on the other; seen
    nearly in the plane of the sky the two halves merge in velocity. Their
    lines are broad (turbulent entrainment), a tenth to a fifth of the speed.
    """
    extent = _log_uniform(rng, 2.0, 8.0)
    position_angle = rng.uniform(0.0, 2.0 * np.pi)
    cos_inclination = rng.uniform(0.05, 0.85)
    speed = rng.uniform(10.0, 60.0)
    opening = rng.uniform(0.1, 0.45)
    wall_width = extent * rng.uniform(0.04, 0.1)
    fill = rng.uniform(0.1, 0.6)
    red_to_blue = _log_uniform(rng, 0.33, 3.0)
    core_size = extent * rng.uniform(0.02, 0.06)
    n_knots = int(rng.integers(0, 7))
    knot_positions = rng.uniform(0.2, 0.9, n_knots) * extent * rng.choice([-1.0, 1.0], n_knots)
    knot_size = extent * 0.03
    knot_weights = rng.uniform(0.3, 1.0, n_knots)

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        along, across = _along_across(x, y, position_angle)
        distance = np.abs(along)
        cavity = opening * np.sqrt(distance * extent)
        walls = _gaussian(np.abs(across) - cavity, wall_width, pixel_scale)
        inside = fill * _gaussian(across, np.maximum(cavity, wall_width), pixel_scale)
        taper = np.exp(-((distance / extent) ** 4)) * (1.0 - np.exp(-distance / wall_width))
        lobes = (walls + inside) * taper * np.where(along > 0.0, red_to_blue, 1.0)
        velocity = speed * cos_inclination * along / extent
        components = [
            Component(lobes, velocity, continuum=0.15),
            Component(_gaussian(np.hypot(x, y), core_size, pixel_scale), 0.0, line=0.3),
        ]
        for position, weight in zip(knot_positions, knot_weights, strict=True):
            knot = _gaussian(np.hypot(along - position, across), knot_size, pixel_scale)
            knot_velocity = 1.5 * speed * cos_inclination * position / extent
            components.append(Component(weight * knot, knot_velocity, continuum=0.05))
        return components

    velocity_extent = 1.5 * speed * cos_inclination
    dispersion = max(1.0, speed * rng.uniform(0.1, 0.2))
    return SkyModel(BIPOLAR_OUTFLOW, extent, velocity_extent, dispersion, emission)


def lensed(rng: np.random.Generator) -> SkyModel:
    """Draw a strongly lensed dusty galaxy: an Einstein ring, arcs, or multiple images.

    A singular isothermal sphere with external shear maps the image plane onto
    the source plane (lens equation ``beta = theta - theta_E theta/|theta| -
    Gamma theta``); the background galaxy, a rotating elliptical Gaussian, is
    evaluated there. Where the source sits relative to the caustics decides
    the configuration, drawn per source: nearly centred gives a ring, further
    out arcs, and far out two or four separate images.
    """
    extent = _log_uniform(rng, 1.5, 5.0)
    einstein_radius = extent * rng.uniform(0.4, 0.75)
    configuration = rng.choice(["ring", "arc", "multiple"])
    offset_range, size_range = {
        "ring": ((0.0, 0.08), (0.12, 0.25)),
        "arc": ((0.15, 0.45), (0.08, 0.18)),
        "multiple": ((0.5, 0.85), (0.05, 0.1)),
    }[str(configuration)]
    offset = einstein_radius * rng.uniform(*offset_range)
    offset_angle = rng.uniform(0.0, 2.0 * np.pi)
    source_x, source_y = offset * np.sin(offset_angle), offset * np.cos(offset_angle)
    source_size = einstein_radius * rng.uniform(*size_range)
    source_axis_ratio = rng.uniform(0.4, 1.0)
    source_position_angle = rng.uniform(0.0, 2.0 * np.pi)
    shear = rng.uniform(0.0, 0.2)
    shear_angle = rng.uniform(0.0, np.pi)
    gamma_1, gamma_2 = shear * np.cos(2.0 * shear_angle), shear * np.sin(2.0 * shear_angle)
    speed = rng.uniform(100.0, 400.0)

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        theta = np.maximum(np.hypot(x, y), 1e-6)
        beta_x = x - einstein_radius * x / theta - (gamma_1 * x + gamma_2 * y)
        beta_y = y - einstein_radius * y / theta - (gamma_2 * x - gamma_1 * y)
        along, across = _along_across(beta_x - source_x, beta_y - source_y, source_position_angle)
        radius = np.hypot(along, across / source_axis_ratio)
        brightness = np.exp(-0.5 * (radius / source_size) ** 2)
        velocity = speed * np.tanh(along / source_size)
        return [Component(brightness, velocity)]

    return SkyModel(LENSED, extent, speed, rng.uniform(30.0, 60.0), emission)


def clumpy_multiple(rng: np.random.Generator) -> SkyModel:
    """Several compact sources: a protostellar multiple, a protocluster, a merger."""
    extent = _log_uniform(rng, 2.0, 8.0)
    n_clumps = int(rng.integers(2, 10))
    spread = rng.uniform(0.25, 0.5) * extent
    positions = rng.normal(0.0, spread, (n_clumps, 2)).clip(-0.9 * extent, 0.9 * extent)
    sizes = extent * np.exp(rng.uniform(np.log(0.05), np.log(0.2), n_clumps))
    weights = np.exp(rng.uniform(0.0, np.log(10.0), n_clumps))
    velocity_scale = _log_uniform(rng, 1.0, 200.0)
    velocities = rng.normal(0.0, velocity_scale, n_clumps)
    envelope = rng.uniform(0.0, 0.15) if rng.random() < 0.5 else 0.0

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        components = [
            Component(weight * _gaussian(np.hypot(x - east, y - north), size, pixel_scale), speed)
            for (east, north), size, weight, speed in zip(
                positions, sizes, weights, velocities, strict=True
            )
        ]
        if envelope > 0.0:
            diffuse = envelope * _gaussian(np.hypot(x, y), 0.5 * extent, pixel_scale)
            components.append(Component(diffuse, 0.0))
        return components

    velocity_extent = float(np.abs(velocities).max())
    dispersion = velocity_scale * rng.uniform(0.2, 0.5)
    return SkyModel(CLUMPY_MULTIPLE, extent, velocity_extent, dispersion, emission)


def filament(rng: np.random.Generator) -> SkyModel:
    """Draw a curved molecular filament with dense cores and a velocity gradient."""
    extent = _log_uniform(rng, 3.0, 10.0)
    position_angle = rng.uniform(0.0, 2.0 * np.pi)
    curvature = rng.uniform(-0.5, 0.5)
    twist = rng.uniform(-0.3, 0.3)
    width = extent * rng.uniform(0.03, 0.12)
    n_cores = int(rng.integers(0, 8))
    core_positions = rng.uniform(-0.8, 0.8, n_cores) * extent
    core_weights = rng.uniform(1.0, 4.0, n_cores)
    gradient = rng.uniform(0.5, 3.0)

    def emission(x: np.ndarray, y: np.ndarray, pixel_scale: float) -> list[Component]:
        along, across = _along_across(x, y, position_angle)
        scaled = along / extent
        spine = extent * (curvature * scaled**2 + twist * scaled**3)
        slope = 2.0 * curvature * scaled + 3.0 * twist * scaled**2
        distance = (across - spine) / np.sqrt(1.0 + slope**2)
        brightness = np.exp(-(np.abs(scaled) ** 4)) * _gaussian(distance, width, pixel_scale)
        for position, weight in zip(core_positions, core_weights, strict=True):
            core = _gaussian(np.hypot(along - position, distance), 1.5 * width, pixel_scale)
            brightness = brightness + weight * core
        return [Component(brightness, gradient * scaled)]

    velocity_extent = 1.4 * gradient  # where the filament's ends have faded
    return SkyModel(FILAMENT, extent, velocity_extent, rng.uniform(0.3, 1.0), emission)


SKY_MODELS: dict[str, Callable[[np.random.Generator], SkyModel]] = {
    POINT_SOURCE: point_source,
    INCLINED_DISC: inclined_disc,
    RING_GAP_DISC: ring_gap_disc,
    SPIRAL: spiral,
    BIPOLAR_OUTFLOW: bipolar_outflow,
    LENSED: lensed,
    CLUMPY_MULTIPLE: clumpy_multiple,
    FILAMENT: filament,
}
"""Draw a source of each morphology class from a random generator."""

MORPHOLOGY_CLASSES: tuple[str, ...] = tuple(SKY_MODELS)
"""The labelled classes of the demo archive, as written in ``truth.csv``."""
