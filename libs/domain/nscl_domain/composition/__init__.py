"""The composition root: wires the contexts together. Only entry points import it.

Importing it binds identity's port onto the catalogue; the job registry, the seed loader
and the process factory live beside it.
"""

from __future__ import annotations

from nscl_domain.catalogue.repository import CatalogueClientUnits
from nscl_domain.composition.events import EVENT_SPECS
from nscl_domain.events import hook
from nscl_domain.identity.units import ClientUnits
from nscl_domain.repositories import Repositories

Repositories.bind(ClientUnits, CatalogueClientUnits)
hook.install(EVENT_SPECS)
