"""A fake IMCCE SkyBoT cone search on 127.0.0.1, answering in SkyBoT's VOTable format.

The answer has the fields, units and sexagesimal strings of the real
service's ``-mime=votable&-output=all`` answer (as in astroquery's own test
data ``skybot_query.vot``); the positions come from our ephemeris of a given
catalogue. Like the real API, the observatory code is read from
``-observer``; ``-loc`` is taken as geodetic coordinates, so a bare code
there is ignored and the answer is geocentric (astroquery issue #3515).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle

from detectors.ephemeris import ephemerides, observer_states
from detectors.observatories import ObservatoryCodes, Site
from detectors.orbits import OrbitCatalog

_FIELDS = """
<vot:FIELD ID="num" name="Num" ucd="meta.id;meta.number" datatype="char" arraysize="6"><vot:DESCRIPTION>Solar system object number</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="name" name="Name" ucd="meta.id;meta.main" datatype="char" arraysize="32"><vot:DESCRIPTION>Solar system object name</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="ra" name="RA" ucd="pos.eq.ra;meta.main" datatype="char" arraysize="13" unit="h:m:s"><vot:DESCRIPTION>Astrometric J2000 right ascension</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="de" name="DEC" ucd="pos.eq.dec;meta.main" datatype="char" arraysize="13" unit="d:m:s"><vot:DESCRIPTION>Astrometric J2000 declination</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="class" name="Class" ucd="meta.code.class;src.class" datatype="char" arraysize="24"><vot:DESCRIPTION>Object classification</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="magV" name="Mv" ucd="phot.mag;em.opt.V" datatype="float" width="13" precision="2"><vot:DESCRIPTION>Visual magnitude</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="errpos" name="ErrPos" ucd="stat.error.sys" datatype="float" width="10" precision="3" unit="arcsec"><vot:DESCRIPTION>Uncertainty on the (RA,DEC) coordinates</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="angdist" name="d" ucd="pos.ang" datatype="float" width="8" precision="3" unit="arcsec"><vot:DESCRIPTION>Body-to-center angular distance</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="dracosdec" name="dRAcosDec" ucd="pos.pm;pos.eq.ra" datatype="double" width="12" unit="arcsec/h"><vot:DESCRIPTION>Motion in right ascension d(RA)cos(DEC)</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="ddec" name="dDEC" ucd="pos.pm;pos.eq.dec" datatype="double" width="12" unit="arcsec/h"><vot:DESCRIPTION>Motion in declination d(DEC)</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="dgeo" name="Dgeo" ucd="phys.distance" datatype="double" width="15" unit="AU"><vot:DESCRIPTION>Distance from observer</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="dhelio" name="Dhelio" ucd="phys.distance" datatype="double" width="15" unit="AU"><vot:DESCRIPTION>Distance from the Sun</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="_raj2000" name="_RAJ2000" ucd="pos.eq.ra" datatype="double" precision="9" width="13" unit="deg" type="hidden"><vot:DESCRIPTION>Astrometric J2000 right ascension</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="_decj2000" name="_DECJ2000" ucd="pos.eq.dec" datatype="double" precision="9" width="13" unit="deg" type="hidden"><vot:DESCRIPTION>Astrometric J2000 declination</vot:DESCRIPTION></vot:FIELD>
<vot:FIELD ID="externallink" name="ExternalLink" ucd="meta.ref.url" datatype="char" arraysize="*" type="hidden"><vot:DESCRIPTION>External link to hint the target</vot:DESCRIPTION></vot:FIELD>
"""


def votable(
    rows: list[dict[str, Any]], *, observer: str, epoch_jd: float, ra: float, dec: float
) -> bytes:
    """SkyBoT's VOTable answer holding ``rows`` (dicts keyed by the FIELD IDs)."""
    order = ["num", "name", "ra", "de", "class", "magV", "errpos", "angdist", "dracosdec", "ddec"]
    order += ["dgeo", "dhelio", "_raj2000", "_decj2000", "externallink"]
    body = "".join(
        "<vot:TR>" + "".join(f"<vot:TD>{row[k]}</vot:TD>" for k in order) + "</vot:TR>\n"
        for row in rows
    )
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<vot:VOTABLE version="1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vot="http://www.ivoa.net/xml/VOTable/v1.3" xmlns:stc="http://www.ivoa.net/xml/STC">
<vot:COOSYS ID="J2000" equinox="J2000" epoch="J2000" system="eq_FK5"/>
<vot:INFO ID="status" name="QUERY_STATUS" value="OK"/>
<vot:INFO ID="reqEpoch" name="Epoch" value="{epoch_jd}"/>
<vot:INFO ID="supplier" name="Supplier" value="Provided by IMCCE/OBSPM/CNRS"/>
<vot:RESOURCE name="Skybot.ConeSearch"><vot:DESCRIPTION>SkyBoT - List of the targets located in the FOV</vot:DESCRIPTION>
<vot:INFO name="QUERY_STATUS" value="OK"/>
<vot:PARAM ID="fovRA" name="RA" datatype="double" ucd="pos.eq.ra" unit="deg" value="{ra}"/>
<vot:PARAM ID="fovDEC" name="DEC" datatype="double" ucd="pos.eq.dec" unit="deg" value="{dec}"/>
<vot:PARAM ID="observer" name="Observer" datatype="char" arraysize="*" ucd="meta.code;obs.observer" value="{observer}"/>
<vot:TABLE ID="SkybotConeSearch_results" name="SkybotConeSearch" nrows="{len(rows)}">
{_FIELDS}<vot:DATA><vot:TABLEDATA>
{body}</vot:TABLEDATA></vot:DATA></vot:TABLE></vot:RESOURCE></vot:VOTABLE>
""".encode()


class FakeSkybot:
    """An `Archive` route: answers cone searches from ``catalog`` with our ephemeris."""

    def __init__(self, catalog: OrbitCatalog, codes: ObservatoryCodes, *, errpos: float = 0.05):
        self.catalog = catalog
        self.codes = codes
        self.errpos = errpos
        self.queries: list[dict[str, str]] = []

    def __call__(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        self.queries.append(query)
        code = query.get("-observer", "500")  # "-loc" wants "lon,lat,alt": a bare code is ignored
        site = Site.geocentre() if code == "500" else self.codes.site(code)
        epoch_jd = float(query["-ep"])
        eph = ephemerides(self.catalog, observer_states(site, np.array([epoch_jd - 2400000.5])))
        ra0, dec0, radius = float(query["-ra"]), float(query["-dec"]), float(query["-rd"])
        rows = []
        for i in range(len(self.catalog)):
            ra, dec = float(eph.ra[i, 0]), float(eph.dec[i, 0])
            dist = np.degrees(np.arccos(np.clip(
                np.sin(np.radians(dec)) * np.sin(np.radians(dec0))
                + np.cos(np.radians(dec)) * np.cos(np.radians(dec0)) * np.cos(np.radians(ra - ra0)),
                -1, 1,
            )))  # fmt: skip
            if dist > radius:
                continue
            number = int(self.catalog.number[i])
            readable = self.catalog.designation(i)
            name = readable.split(")", 1)[1].strip() if number >= 0 else readable
            rows.append(
                {
                    "num": number if number >= 0 else "-",
                    "name": name,
                    "ra": Angle(ra * u.deg).to_string(
                        unit=u.hourangle, sep=" ", precision=4, pad=True
                    ),
                    "de": Angle(dec * u.deg).to_string(
                        sep=" ", precision=3, pad=True, alwayssign=True
                    ),
                    "class": "MB>Inner",
                    "magV": f"{float(eph.v_mag[i, 0]):.1f}",
                    "errpos": f"{self.errpos:.3f}",
                    "angdist": f"{dist * 3600:.3f}",
                    "dracosdec": f"{float(eph.ra_rate[i, 0]):.4f}",
                    "ddec": f"{float(eph.dec_rate[i, 0]):.4f}",
                    "dgeo": f"{float(eph.delta[i, 0]):.9f}",
                    "dhelio": f"{float(eph.r[i, 0]):.9f}",
                    "_raj2000": f"{ra:.9f}",
                    "_decj2000": f"{dec:.9f}",
                    "externallink": "https://ssp.imcce.fr/",
                }
            )
        return 200, "text/xml", votable(rows, observer=code, epoch_jd=epoch_jd, ra=ra0, dec=dec0)
