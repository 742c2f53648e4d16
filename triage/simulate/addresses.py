"""DAR addresses of the simulated world: municipalities, roads and dwellings.

The home municipality is 0561 (Esbjerg), where every case lives; a few neighbours (0573 Varde,
0575 Vejen, 0101 København, 0751 Aarhus) give people somewhere to move to and come from. Each
municipality has roads with road codes 0001–0999 and dwellings on them (houses, and flats with
floor and door). Esbjerg also has a few municipal pseudo-addresses on road codes 9900–9999, where
CPR registers citizens without a fixed address.

A :class:`SimAddress` is mutable: DAR events rename, renumber, re-postcode, move it to another
municipality (a boundary change) or retire it. Its address id (a UUID from the seeded generator)
never changes, exactly like a DAR id. :meth:`SimAddress.as_json` renders the CONTRACT.md Address
object as it stands now.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HOME_MUNICIPALITY = "0561"
BOUNDARY_NEIGHBOUR = "0573"
"""Where a boundary change moves an Esbjerg address (Varde borders Esbjerg)."""

MUNICIPALITIES: dict[str, list[tuple[str, str]]] = {
    "0561": [("6700", "Esbjerg"), ("6705", "Esbjerg Ø"), ("6710", "Esbjerg V"),
             ("6715", "Esbjerg N"), ("6731", "Tjæreborg"), ("6740", "Bramming"),
             ("6760", "Ribe")],
    "0573": [("6800", "Varde"), ("6818", "Årre"), ("6840", "Oksbøl")],
    "0575": [("6600", "Vejen"), ("6630", "Rødding"), ("6650", "Brørup")],
    "0101": [("1620", "København V"), ("2200", "København N"), ("2300", "København S")],
    "0751": [("8000", "Aarhus C"), ("8200", "Aarhus N"), ("8210", "Aarhus V")],
}
"""Municipality code → its postcodes and towns."""

NEIGHBOURS = ("0573", "0575", "0101", "0751")

_STEMS = (
    "Kongens", "Skole", "Kirke", "Strand", "Mølle", "Havne", "Torve", "Nørre", "Søndre",
    "Vester", "Øster", "Bakke", "Skov", "Eng", "Mark", "Lunde", "Birke", "Ege", "Ask", "Rose",
    "Lyng", "Hede", "Fjord", "Sø", "Bøge", "Hassel", "Kastanje", "Pile", "Tjørne", "Hylde",
    "Valmue", "Kløver", "Rug", "Havre", "Byg", "Smede", "Bager", "Væver", "Skipper", "Fiskers",
    "Sejl", "Anker", "Klit", "Sand", "Dige", "Mose", "Kær", "Å", "Grønne", "Stations",
)
_SUFFIXES = ("gade", "vej", "allé", "stræde", "parken", "toften", "vænget", "bakken", "haven",
             "stien")


@dataclass(slots=True)
class SimAddress:
    """One DAR address (a dwelling or a municipal pseudo-address)."""

    aid: int
    """Index in :attr:`World.addresses`."""
    address_id: str
    municipality_code: str
    road_code: str
    road_name: str
    house_number: str
    floor: str | None
    door: str | None
    postcode: str
    city: str
    retired: bool = False
    _json: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def no_fixed_address(self) -> bool:
        return int(self.road_code) >= 9900

    def label(self) -> str:
        parts = [self.road_name if self.no_fixed_address
                 else f"{self.road_name} {self.house_number}"]
        unit = " ".join(x for x in (f"{self.floor}." if self.floor else None, self.door) if x)
        if unit:
            parts.append(unit)
        parts.append(f"{self.postcode} {self.city}")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The CONTRACT.md Address object (cached until the address changes)."""
        if self._json is None:
            self._json = {
                "address_id": self.address_id,
                "municipality_code": self.municipality_code,
                "road_code": self.road_code,
                "house_number": self.house_number,
                "floor": self.floor,
                "door": self.door,
                "postcode": self.postcode,
                "label": self.label(),
            }
        return self._json

    def changed(self) -> None:
        """Forget the cached JSON after a DAR change."""
        self._json = None


def new_address_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def road_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct Danish-looking road names."""
    names = [s + x for s in _STEMS for x in _SUFFIXES]
    rng.shuffle(names)
    if count > len(names):
        names += [f"{n} {i}" for i in range(2, 2 + count // len(names)) for n in names]
    return names[:count]


def build_dwellings(rng: random.Random, municipality: str, count: int,
                    first_aid: int) -> list[SimAddress]:
    """``count`` dwellings in ``municipality`` on roads of varying length (some short ones, so a
    whole street can be renamed), road codes 0001–0999."""
    out: list[SimAddress] = []
    n_roads = max(3, min(900, count // 40))
    names = road_names(rng, n_roads)
    codes = rng.sample(range(1, 1000), n_roads)
    postcodes = MUNICIPALITIES[municipality]
    # Road lengths: a few long streets, many short ones.
    weights = [rng.choice((1, 1, 2, 3, 8, 20)) for _ in range(n_roads)]
    total = sum(weights)
    roads: list[tuple[str, str, str, str, int]] = []
    for name, number, weight in zip(names, codes, weights, strict=True):
        postcode, city = rng.choice(postcodes)
        roads.append((name, f"{number:04d}", postcode, city, max(1, count * weight // total)))
    while len(out) < count:
        for name, code, postcode, city, length in roads:
            flats = rng.random() < 0.35
            number = 0
            made = 0
            while made < length and len(out) < count:
                number += rng.choice((1, 2, 2, 2))
                house = str(number) + (rng.choice("ABC") if rng.random() < 0.05 else "")
                storeys: Sequence[tuple[str | None, str | None]] = [(None, None)]
                if flats:
                    storeys = [(f, d) for f in ("st", "1", "2", "3")
                               for d in ("th", "tv")][: rng.choice((4, 6, 8))]
                for floor, door in storeys:
                    if made >= length or len(out) >= count:
                        break
                    out.append(SimAddress(
                        aid=first_aid + len(out), address_id=new_address_id(rng),
                        municipality_code=municipality, road_code=code, road_name=name,
                        house_number=house, floor=floor, door=door, postcode=postcode, city=city))
                    made += 1
            if len(out) >= count:
                break
    return out


def build_pseudo_addresses(rng: random.Random, first_aid: int) -> list[SimAddress]:
    """Esbjerg's municipal pseudo-addresses ("uden fast bopæl"), road codes ≥ 9900."""
    out = []
    codes = ("9901", "9902", "9950", "9990", "9999", *(f"{9903 + i}" for i in range(15)))
    for i, code in enumerate(codes):
        postcode, city = MUNICIPALITIES[HOME_MUNICIPALITY][0]
        out.append(SimAddress(
            aid=first_aid + i, address_id=new_address_id(rng), municipality_code=HOME_MUNICIPALITY,
            road_code=code, road_name="Uden fast bopæl", house_number="1", floor=None, door=None,
            postcode=postcode, city=city))
    return out
