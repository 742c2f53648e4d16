"""Fixed-width layouts of the CPR change extract (P12170 "ændringsudtræk"), as data.

Positions are **1-based** and lengths in characters, exactly as CPR's "Udtræksvejledning for
offentlige brugere" (P12170) states them. They are copied from these public transcriptions:

* magenta-aps/cprbroker ``PART/Source/CprBroker/CPRDirect/XML/Definitions.xml`` (read at commits
  0a194864 and c31b28d5): the ``P12170-NNN`` objects, their ``length`` and every ``Attribute``'s
  ``position``/``length``/``danishName`` for records 000, 001, 002, 003, 004, 005, 007, 008, 012,
  014, 015, 910, 997 and 999, and the total record lengths of all other types.
* magenta-aps/cpr_udtraek ``cpr_udtraek/records_parser.py``: the same positions as Python
  slices for 001, 003, 004, 008 and 012 (e.g. 001 ``STATUS = record[23:25]``, 012
  ``CIVST = record[13:14]``, ``AEGTEPNR = record[14:24]``) — they agree with Definitions.xml.
* Records 022 (historisk personnummer), 023 (historisk adresse) and 029 (historisk civilstand):
  Definitions.xml gives only their lengths (45, 96, 109). Their fields are read from the CPR
  office's own test extract (``U12170-P opgavenr 110901 ADRNVN FE``, magenta-aps/cprbroker
  ``CPRDirect.Tests/Resources``), where every record of these types lines up at the positions
  below; the names follow the current records' (002, 012) names, ``HISTPNR`` is ours. ``ANNKOR``
  is CPR's annulment/correction marker (``A`` annulled, ``K`` corrected).
* Record 099 (hændelser): Definitions.xml gives only its length (45) and leaves the fields as
  "MORE FIELDS". The fields come from a public UFST CPR demo-extract generator
  (``CprDemoTool.make_rec_099``, 2022, found in the public code index): ``TIMESTAMPU`` at
  offset 13 (12), ``HAENDELSE`` at 25 (3), ``AFLEDTMRK`` at 28 (2), ``NGLKONST`` at 30 (15),
  i.e. 1-based positions 14, 26, 29, 31 — which matches the raw 099 lines in cprbroker's test
  data (``0990101980014200111080859A21``) and record 997's documented layout.

Key fields (1-based start, length):

====  =====================  =====  ======
rec   field                  start  length
====  =====================  =====  ======
000   PRODDTO                20     8       (yyyyMMdd)
000   PRODDTOFORRIG          28     8
001   PNR                    4      10
001   STATUS                 24     2
001   STATUSHAENSTART        26     12      (yyyyMMddHHmm)
002   KOMKOD                 14     4
002   VEJKOD                 18     4
002   HUSNR                  22     4
002   ETAGE                  26     2
002   SIDEDOER               28     4
002   TILFLYDTO              70     12      (yyyyMMddHHmm)
002   FRAFLYKOMKOD           96     4
005   UDR_LANDEKOD           14     4
005   UDRDTO                 18     12
008   FORNVN/MELNVN/EFTERNVN 14/65/106  50/40/40
012   CIVST                  14     1
012   AEGTEPNR               15     10
012   HAENSTART-CIVILSTAND   71     12
014   BARNPNR                14     10
022   HISTPNR                14     10      (an earlier PNR of the person)
023   ANNKOR / KOMKOD        14 / 15 1 / 4
023   TILFLYDTO / FRAFLYDTO  71 / 84 12 / 12
029   ANNKOR / CIVST         14 / 15 1 / 1
099   TIMESTAMPU             14     12
099   HAENDELSE              26     3
099   AFLEDTMRK              29     2
====  =====================  =====  ======

Field names are CPR's Danish names. Where the source reuses a name inside one record
(Definitions.xml calls record 014's child number ``PNR`` and 999's first field ``TAELLER``),
the field is renamed here (``BARNPNR``, ``SORTFELT-10``) so that names are unique per record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its CPR name, 1-based start position, length, and whether it is numeric
    (``Numeric`` in the source: digits, or all blank when the field is not filled)."""

    name: str
    start: int
    length: int
    numeric: bool = False

    @property
    def end(self) -> int:
        """1-based position of the field's last character."""
        return self.start + self.length - 1

    def cut(self, line: str) -> str:
        """The raw (unstripped) text of the field in ``line``."""
        return line[self.start - 1 : self.start - 1 + self.length]


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """A record type: its code (``"001"``), CPR name, total length and fields."""

    code: str
    name: str
    length: int
    fields: tuple[FieldSpec, ...]
    person: bool = True
    """Whether the record carries a PNR at 4–13 (all but 000 and 999)."""

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _f(name: str, start: int, length: int, numeric: bool = False) -> FieldSpec:
    return FieldSpec(name, start, length, numeric)


_RT = _f("RECORDTYPE", 1, 3, numeric=True)
_PNR = _f("PNR", 4, 10, numeric=True)


def _layout(code: str, name: str, length: int, *fields: FieldSpec,
            person: bool = True) -> RecordLayout:
    head = (_RT, _PNR) if person else (_RT,)
    return RecordLayout(code, name, length, head + fields, person)


LAYOUTS: dict[str, RecordLayout] = {
    layout.code: layout
    for layout in (
        _layout(
            "000", "Startrecord", 35,
            _f("SORTFELT-10", 4, 10),
            _f("OPGAVENR", 14, 6, numeric=True),
            _f("PRODDTO", 20, 8, numeric=True),
            _f("PRODDTOFORRIG", 28, 8, numeric=True),
            person=False,
        ),
        _layout(
            "001", "Personoplysninger", 106,
            _f("PNRGAELD", 14, 10),
            _f("STATUS", 24, 2, numeric=True),
            _f("STATUSHAENSTART", 26, 12, numeric=True),
            _f("STATUSDTO_UMRK", 38, 1),
            _f("KOEN", 39, 1),
            _f("FOED_DT", 40, 10),
            _f("FOED_DT_UMRK", 50, 1),
            _f("START_DT-PERSON", 51, 10),
            _f("START_DT_UMRK-PERSON", 61, 1),
            _f("SLUT_DT-PERSON", 62, 10),
            _f("SLUT_DT_UMRK-PERSON", 72, 1),
            _f("STILLING", 73, 34),
        ),
        _layout(
            "002", "Aktuelle adresseoplysninger", 306,
            _f("KOMKOD", 14, 4, numeric=True),
            _f("VEJKOD", 18, 4, numeric=True),
            _f("HUSNR", 22, 4),
            _f("ETAGE", 26, 2),
            _f("SIDEDOER", 28, 4),
            _f("BNR", 32, 4),
            _f("CONVN", 36, 34),
            _f("TILFLYDTO", 70, 12, numeric=True),
            _f("TILFLYDT_UMRK", 82, 1),
            _f("TILFLYKOMDTO", 83, 12, numeric=True),
            _f("TILFLYKOMDT_UMRK", 95, 1),
            _f("FRAFLYKOMKOD", 96, 4, numeric=True),
            _f("FRAFLYKOMDTO", 100, 12, numeric=True),
            _f("FRAFLYKOMDT_UMRK", 112, 1),
            _f("START_MYNKOD-ADRTXT", 113, 4, numeric=True),
            _f("ADR1-SUPLADR", 117, 34),
            _f("ADR2-SUPLADR", 151, 34),
            _f("ADR3-SUPLADR", 185, 34),
            _f("ADR4-SUPLADR", 219, 34),
            _f("ADR5-SUPLADR", 253, 34),
            _f("START_DT-ADRTXT", 287, 10),
            _f("SLET_DT-ADRTXT", 297, 10),
        ),
        _layout(
            "003", "Adressenavn og klarskriftadresse", 249,
            _f("ADRNVN", 14, 34),
            _f("CONVN", 48, 34),
            _f("LOKALITET", 82, 34),
            _f("STANDARDADR", 116, 34),
            _f("BYNVN", 150, 34),
            _f("POSTNR", 184, 4, numeric=True),
            _f("POSTDISTTXT", 188, 20),
            _f("KOMKOD", 208, 4, numeric=True),
            _f("VEJKOD", 212, 4, numeric=True),
            _f("HUSNR", 216, 4),
            _f("ETAGE", 220, 2),
            _f("SIDEDOER", 222, 4),
            _f("BNR", 226, 4),
            _f("VEJADRNVN", 230, 20),
        ),
        _layout(
            "004", "Beskyttelse", 37,
            _f("BESKYTTYPE", 14, 4, numeric=True),
            _f("START_DT-BESKYTTELSE", 18, 10),
            _f("SLET_DT-BESKYTTELSE", 28, 10),
        ),
        _layout(
            "005", "Aktuelle udrejseoplysninger", 200,
            _f("UDR_LANDEKOD", 14, 4, numeric=True),
            _f("UDRDTO", 18, 12, numeric=True),
            _f("UDRDTO_UMRK", 30, 1),
            _f("UDLANDADR1", 31, 34),
            _f("UDLANDADR2", 65, 34),
            _f("UDLANDADR3", 99, 34),
            _f("UDLANDADR4", 133, 34),
            _f("UDLANDADR5", 167, 34),
        ),
        _layout("006", "Kontaktadresse", 203),
        _layout(
            "007", "Aktuel forsvinding", 26,
            _f("FORSVINDDTO", 14, 12, numeric=True),
            _f("FORSVINDDTO_UMRK", 26, 1),
        ),
        _layout(
            "008", "Aktuelle navneoplysninger", 193,
            _f("FORNVN", 14, 50),
            _f("FORNVN_MRK", 64, 1),
            _f("MELNVN", 65, 40),
            _f("MELNVN_MRK", 105, 1),
            _f("EFTERNVN", 106, 40),
            _f("EFTERNVN_MRK", 146, 1),
            _f("NVNHAENSTART", 147, 12, numeric=True),
            _f("HAENSTART_UMRK-NAVNE", 159, 1),
            _f("ADRNVN", 160, 34),
        ),
        _layout("009", "Fødselsregistrering", 37),
        _layout("010", "Aktuelt statsborgerskab", 30),
        _layout("011", "Folkekirkeforhold", 25),
        _layout(
            "012", "Aktuel civilstand", 95,
            _f("CIVST", 14, 1),
            _f("AEGTEPNR", 15, 10),
            _f("AEGTEFOED_DT", 25, 10),
            _f("AEGTEFOEDDT_UMRK", 35, 1),
            _f("AEGTENVN", 36, 34),
            _f("AEGTENVN_MRK", 70, 1),
            _f("HAENSTART-CIVILSTAND", 71, 12, numeric=True),
            _f("HAENSTART_UMRK-CIVILSTAND", 83, 1),
            _f("SEP_HENVIS-CIVILSTAND", 84, 12),
        ),
        _layout("013", "Aktuel separation", 36),
        _layout("014", "Børn", 23, _f("BARNPNR", 14, 10, numeric=True)),
        _layout(
            "015", "Forældre", 147,
            _f("MOR_DT", 14, 10),
            _f("MOR_DT_UMRK", 24, 1),
            _f("PNRMOR", 25, 10),
            _f("MOR_FOED_DT", 35, 10),
            _f("MOR_FOED_DT_UMRK", 45, 1),
            _f("MORNVN", 46, 34),
            _f("MORNVN_MRK", 80, 1),
            _f("FAR_DT", 81, 10),
            _f("FAR_DT_UMRK", 91, 1),
            _f("PNRFAR", 92, 10),
            _f("FAR_FOED_DT", 102, 10),
            _f("FAR_FOED_DT_UMRK", 112, 1),
            _f("FARNVN", 113, 34),
            _f("FARNVN_MRK", 147, 1),
        ),
        _layout("016", "Forældremyndighed", 58),
        _layout("017", "Umyndiggørelse og værge", 272),
        _layout("018", "Kommunale forhold", 60),
        _layout("019", "Notater", 75),
        _layout("020", "Valgoplysninger", 47),
        _layout("021", "Flyttepåbud", 63),
        _layout(
            "022", "Historisk personnummer", 45,
            _f("HISTPNR", 14, 10),
            _f("START_DT-HISTPNR", 24, 10),
            _f("START_DT_UMRK-HISTPNR", 34, 1),
            _f("SLUT_DT-HISTPNR", 35, 10),
            _f("SLUT_DT_UMRK-HISTPNR", 45, 1),
        ),
        _layout(
            "023", "Historisk adresse", 96,
            _f("ANNKOR", 14, 1),
            _f("KOMKOD", 15, 4, numeric=True),
            _f("VEJKOD", 19, 4, numeric=True),
            _f("HUSNR", 23, 4),
            _f("ETAGE", 27, 2),
            _f("SIDEDOER", 29, 4),
            _f("BNR", 33, 4),
            _f("CONVN", 37, 34),
            _f("TILFLYDTO", 71, 12, numeric=True),
            _f("TILFLYDT_UMRK", 83, 1),
            _f("FRAFLYDTO", 84, 12, numeric=True),
            _f("FRAFLYDT_UMRK", 96, 1),
        ),
        _layout("024", "Historisk udrejse/indrejse", 218),
        _layout("025", "Historisk forsvinding", 40),
        _layout("026", "Historisk navn", 173),
        _layout("027", "Historisk statsborgerskab", 44),
        _layout("028", "Historisk folkekirkeforhold", 36),
        _layout(
            "029", "Historisk civilstand", 109,
            _f("ANNKOR", 14, 1),
            _f("CIVST", 15, 1),
            _f("AEGTEPNR", 16, 10),
            _f("AEGTEFOED_DT", 26, 10),
            _f("AEGTEFOEDDT_UMRK", 36, 1),
            _f("AEGTENVN", 37, 34),
            _f("AEGTENVN_MRK", 71, 1),
            _f("HAENSTART-CIVILSTAND", 72, 12, numeric=True),
            _f("HAENSTART_UMRK-CIVILSTAND", 84, 1),
            _f("HAENSLUT-CIVILSTAND", 85, 12, numeric=True),
            _f("HAENSLUT_UMRK-CIVILSTAND", 97, 1),
            _f("SEP_HENVIS-CIVILSTAND", 98, 12),
        ),
        _layout("030", "Historisk separation", 48),
        # 052 (værgemål with værgemålstype) is not in Definitions.xml; its length is from the
        # UFST demo generator (017's 272 characters plus VAERGEMAALS_TYPE, 15).
        _layout("052", "Umyndiggørelse og værge med værgemålstype", 287),
        _layout(
            "099", "Hændelser", 45,
            _f("TIMESTAMPU", 14, 12, numeric=True),
            _f("HAENDELSE", 26, 3),
            _f("AFLEDTMRK", 29, 2),
            _f("NGLKONST", 31, 15),
        ),
        _layout(
            "910", "Fejlrecord", 157,
            _f("SORTFELT-10", 4, 10),
            _f("INDDATA", 14, 75),
            _f("FEJLNR", 89, 4, numeric=True),
            _f("FEJLTXT-UDTRAEK", 93, 65),
            person=False,
        ),
        _layout(
            "997", "Kvittering for sletning af abonnement", 43,
            _f("TIMESTAMPU", 14, 12, numeric=True),
            _f("HAENDELSE", 26, 3),
            _f("NGLKONST", 29, 15),
        ),
        _layout(
            "999", "Slutrecord", 21,
            _f("SORTFELT-10", 4, 10),
            _f("TAELLER", 14, 8),
            person=False,
        ),
    )
}
"""Every P12170 record type by code. Types listed with no fields beyond RECORDTYPE/PNR are
recognised and length-checked, but their content is not needed by the triage service."""

def check_layouts() -> None:
    """Assert that fields never overlap and stay inside the record (run by the tests)."""
    for layout in LAYOUTS.values():
        last = 0
        for spec in sorted(layout.fields, key=lambda s: s.start):
            assert spec.start > last, (layout.code, spec.name)
            assert spec.end <= layout.length, (layout.code, spec.name)
            last = spec.end
