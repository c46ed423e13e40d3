"""DataLink service descriptors: how a VOTable tells a client which service to call, and how.

DataLink 1.1, section 4: a ``RESOURCE type="meta" utype="adhoc:service"``
carries the service's ``accessURL`` (and its ``standardID`` where the service
follows a standard) as PARAMs, and its input parameters in a GROUP named
``inputParams``. An input parameter either has a fixed value, is left for
the user to fill in (with its range or options, so that a client can offer a
form), or is bound to a column of the table by ``ref``, so that the client
takes the value from the row it invokes the service on. pyvo's
``iter_datalinks()`` and ``DatalinkRecord.process()`` and TOPCAT's "Invoke
Service" action read exactly these elements.

Descriptors are written by the VOTable writer (``templates/datalink/
service_descriptor.xml``), after the results RESOURCE, in TAP results,
DataLink ``{links}`` responses and similarity results alike.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATALINK_STANDARD_ID", "InputParam", "ServiceDescriptor", "links_service"]

DATALINK_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
"""standardID of a DataLink 1.1 ``{links}`` endpoint (DataLink 1.1, section 4.1)."""


@dataclass(frozen=True)
class InputParam:
    """One input parameter of a service, as a VOTable PARAM (DataLink 1.1, section 4.2).

    Parameters
    ----------
    name
        The parameter name the service reads.
    datatype, arraysize
        VOTable type of the value.
    value
        A fixed value, or empty: the client supplies it.
    ref
        ``ID`` of the FIELD whose value in the invoked row is the parameter's value.
    ucd, unit, description
        What the parameter means.
    minimum, maximum
        Range of accepted values, for a client's form.
    options
        The accepted values, when they are a list.
    """

    name: str
    datatype: str = "char"
    arraysize: str | None = "*"
    value: str = ""
    ref: str | None = None
    ucd: str | None = None
    unit: str | None = None
    description: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceDescriptor:
    """A service a client can call, described in a VOTable (DataLink 1.1, section 4.1).

    Parameters
    ----------
    id
        XML ID of the RESOURCE (what a ``{links}`` row's ``service_def`` names).
    access_url
        Where to send the request.
    input_params
        The parameters the service takes.
    standard_id
        The standard the service follows, if any.
    name, description
        What the service does, for a person choosing it.
    content_type
        MIME type of the service's response, when it is always the same.
    """

    id: str
    access_url: str
    input_params: tuple[InputParam, ...] = ()
    standard_id: str | None = None
    name: str | None = None
    description: str | None = None
    content_type: str | None = None


def links_service(datalink_url: str, id_ref: str) -> ServiceDescriptor:
    """Describe the DataLink ``{links}`` endpoint, its ID read from FIELD ``id_ref`` of a row.

    This is the descriptor pyvo's ``iter_datalinks()`` looks for (by its
    standardID) in a TAP or similarity result, and TOPCAT offers as
    "Invoke Service" on each row.
    """
    return ServiceDescriptor(
        id="datalink",
        access_url=datalink_url,
        standard_id=DATALINK_STANDARD_ID,
        name="DataLink",
        description="The files, previews and services of each dataset",
        input_params=(InputParam("ID", ref=id_ref, ucd="meta.id;meta.main"),),
    )
