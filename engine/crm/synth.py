"""Seeded example data: native leads, and the same leads as HubSpot and Salesforce hold them (each preset
reversed), so that the example exports are realistic and a round trip can be checked byte for byte.

    python -m engine.crm.synth --out scenarios/crm --leads 2000 --seed 12

writes hubspot-contacts.csv (the CSV export: display labels) + hubspot-engagements.csv, salesforce-leads.csv
(Data Loader: API names) + salesforce-tasks.csv, and Pipedrive API pages: pipedrive-leads.json (leads with their
person and organization), pipedrive-activities.json, pipedrive-lead-labels.json and pipedrive-deal-fields.json
(the custom fields' keys and names); and one day of Google Analytics 4 events by those leads as the BigQuery
export writes them (ga4-events_20261120.jsonl) with ga4-join.csv (user_pseudo_id -> lead_id). The same seed
gives the same bytes.

Native leads are drawn so that every value survives the CRM's shape: HubSpot's employee bands keep only their
lower bound, so HubSpot leads have band-bound sizes; times are whole minutes in UTC; stages and activity types
are those the CRM can hold. Rows the mapping declares `skip` (emails, inbound calls) are added as noise.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine.crm.mapping import Mapping

AS_OF = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)  # the example data's "today" (README runs use it)
FIRST = ["Olivia", "Jack", "Charlotte", "William", "Amelia", "Noah", "Isla", "Leo", "Mia", "Henry", "Ava", "Lucas",
         "Grace", "Thomas", "Chloe", "Oscar", "Zoe", "James", "Ruby", "Ethan", "Priya", "Wei", "Aroha", "Hiro", "Sofia"]
LAST = ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White", "Lee",
        "Anderson", "Thompson", "Walker", "Harris", "Kelly", "Singh", "Chen", "Patel", "Tanaka", "Müller", "O'Brien"]
COMPANY_A = ["Harbour", "Summit", "Koala", "Southern", "Pacific", "Blue Gum", "Coral", "Outback", "Granite", "Brightwater",
             "Northwind", "Redfern", "Ironbark", "Wattle", "Tasman", "Meridian", "Silver Fern", "Kookaburra"]
COMPANY_B = ["Analytics", "Health", "Logistics", "Software", "Mining", "Financial", "Retail Group", "Engineering",
             "Partners", "Labs", "Systems", "Education", "Foods", "Energy"]
TITLES = {"c_level": ["CEO", "CFO", "Chief Revenue Officer"], "vp": ["VP Sales", "VP Marketing", "VP Operations"],
          "director": ["Director of IT", "Sales Director", "Marketing Director"],
          "manager": ["Sales Manager", "IT Manager", "Operations Manager"],
          "individual": ["Analyst", "Engineer", "Account Executive"], "student": ["Student"], "other": ["Consultant"]}
FREE_MAIL = ["gmail.com", "outlook.com", "yahoo.com"]
PLACES = [("AU", ["NSW", "QLD", "QLD", "VIC", "WA", "SA", "ACT", "TAS"], 45), ("NZ", ["AUK", "WGN"], 8),
          ("US", ["CA", "NY", "TX", "MA"], 14), ("GB", [], 7), ("SG", [], 6), ("DE", [], 4), ("IN", [], 4),
          ("JP", [], 3), ("CA", ["ON", "BC"], 3), ("IE", [], 2), ("FR", [], 2), ("BR", [], 2)]
INDUSTRIES = ["software", "financial_services", "healthcare", "manufacturing", "retail", "education", "government",
              "mining", "professional_services", "other"]
HUBSPOT_BANDS = {1: "1-5", 5: "5-25", 25: "25-50", 50: "50-100", 100: "100-500", 500: "500-1000", 1000: "1000+"}
HUBSPOT_OTHER_INDUSTRIES = ["Airlines/Aviation", "Construction", "Hospitality", "Utilities"]
CRM_STAGES = {"hubspot": ["subscriber", "lead", "lead", "mql", "mql", "sql", "opportunity", "customer"],
              "pipedrive": ["lead", "lead", "mql", "mql", "sql", "sql", "nurture", "disqualified"],
              "salesforce": ["lead", "lead", "mql", "mql", "sal", "sql", "opportunity", "nurture", "recycled",
                             "disqualified"]}
ACTIVITY_TYPES = ["call_attempt", "call_attempt", "call_attempt", "discovery_call_booked", "demo_request"]
PIPEDRIVE_ACTIVITY_TYPES = ["call_attempt", "call_attempt", "call_attempt", "meeting", "email_sent"]
STAGE_DATED = {"hubspot": {"subscriber", "lead", "mql", "sql", "opportunity", "customer"},
               "pipedrive": {"lead", "mql", "sql", "nurture", "disqualified"},
               "salesforce": {"lead", "mql", "sql", "opportunity"}}


def _minute(moment: datetime) -> str:
    return moment.replace(second=0, microsecond=0).isoformat()


def native_leads(n: int, seed: int, crm: str, as_of: datetime = AS_OF) -> list[dict[str, Any]]:
    """`n` native leads a `crm` ("hubspot", "salesforce" or "pipedrive") can hold without loss; the same seed, the
    same leads."""
    rng = random.Random(f"{crm}:{seed}")
    owners = _owner_ids(crm)
    sources = {"hubspot": ["website", "website", "paid_search", "social", "referral", "import"],
               "salesforce": ["website", "paid_search", "social", "referral", "partner", "event", "webinar",
                              "outbound", "import"],
               "pipedrive": ["website", "website", "import", "outbound", "partner"]}[crm]
    leads = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
        domain = company.lower().replace(" ", "").replace("'", "") + rng.choice([".com", ".com.au", ".io", ".co.nz"])
        country, states, _ = rng.choices(PLACES, weights=[w for _, _, w in PLACES])[0]
        seniority = rng.choice(list(TITLES))
        if crm == "hubspot":
            employees = rng.choice(list(HUBSPOT_BANDS))
            lead_id = str(1000001 + i)
        elif crm == "pipedrive":  # lead ids are UUIDs
            employees = int(rng.lognormvariate(4.3, 1.6)) + 1
            lead_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        else:
            employees = int(rng.lognormvariate(4.3, 1.6)) + 1
            lead_id = f"00Q5g00000{i:05d}AAA"
        created = as_of - timedelta(days=rng.uniform(1, 120), minutes=rng.randint(0, 1439))
        lead: dict[str, Any] = {"id": lead_id, "email": f"{first.lower()}.{_ascii(last)}@" + (
            rng.choice(FREE_MAIL) if rng.random() < 0.12 else domain)}
        lead["first_name"], lead["last_name"] = first, last
        lead["job_title"] = rng.choice(TITLES[seniority])
        if crm == "hubspot":  # Salesforce's Lead has no seniority field
            lead["seniority"] = seniority
        lead["country"] = country
        if states:
            lead["state"] = rng.choice(states)
        lead["employees"] = employees
        if country == "AU" and rng.random() < 0.6:
            lead["abn"] = "".join(str(rng.randint(0, 9)) for _ in range(11))
        if rng.random() < 0.9:
            lead["source"] = rng.choice(sources)
        lead["unsubscribed"] = rng.random() < 0.04
        if rng.random() < 0.15:
            lead["requested_quote"] = True
        if rng.random() < 0.18:
            lead["account_owner"] = rng.choice(sorted(owners))
        lead["company"] = {"name": company, "domain": domain, "industry": rng.choice(INDUSTRIES),
                           "annual_revenue": rng.randrange(100_000, 500_000_000, 50_000)}
        if crm == "pipedrive":  # an organization has a name (domain, industry, revenue: custom fields, not used)
            lead["company"] = {"name": company}
        stage = rng.choice(CRM_STAGES[crm])
        lead["stage"] = stage
        if stage in STAGE_DATED[crm]:
            entered = created + timedelta(days=rng.uniform(0, (as_of - created).days or 1) * (stage != "lead"))
            if crm == "salesforce" and stage == "lead":
                entered = created
            entered = min(entered, as_of - timedelta(minutes=5))
            if crm == "salesforce" and stage == "opportunity":  # ConvertedDate is a date
                entered = entered.replace(hour=0, minute=0)
            lead["stage_entered_at"] = _minute(entered)
        lead["_created"] = _minute(created)
        if crm == "pipedrive":
            lead["created_at"] = lead["_created"]
        acts = []
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4, 6])):
            at = created + timedelta(minutes=rng.randint(5, int((as_of - created).total_seconds() // 60)))
            if crm == "pipedrive":  # done activities with who did them
                acts.append({"type": rng.choice(PIPEDRIVE_ACTIVITY_TYPES), "at": _minute(min(at, as_of)),
                             "actor": rng.choice(owners), "direction": "outbound"})
                continue
            acts.append({"type": rng.choice(ACTIVITY_TYPES), "at": _minute(min(at, as_of))})
        if acts:
            lead["activities"] = sorted(acts, key=lambda a: a["at"])
        leads.append(lead)
    return leads


def _ascii(text: str) -> str:
    return text.lower().replace("ü", "u").replace("'", "")


def _owner_ids(crm: str) -> list[str]:
    from engine.crm.mapping import PRESET_DIR
    from engine.yamlsafe import load_yaml

    doc, _ = load_yaml((PRESET_DIR / f"{crm}.yaml").read_bytes(), crm)
    return list(doc["lead"]["account_owner"]["owners"])


def _owner_numbers() -> dict[str, int]:
    """rep id -> Pipedrive user id, from the pipedrive preset's owner map."""
    from engine.crm.mapping import PRESET_DIR
    from engine.yamlsafe import load_yaml

    doc, _ = load_yaml((PRESET_DIR / "pipedrive.yaml").read_bytes(), "pipedrive")
    return {rep: int(spellings[0]) for rep, spellings in doc["lead"]["account_owner"]["owners"].items()}


def strip_private(lead: dict[str, Any]) -> dict[str, Any]:
    """The native lead without the generator's bookkeeping (keys starting with '_')."""
    return {k: v for k, v in lead.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------------ HubSpot


def _hs_time(iso: str, shape: str) -> str:
    moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M") if shape == "export" else moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _epoch_ms(iso: str) -> str:
    return str(int(datetime.fromisoformat(iso).timestamp() * 1000))


HUBSPOT_STAGE_PROPERTY = {"subscriber": "subscriber", "lead": "lead", "mql": "marketingqualifiedlead",
                          "sql": "salesqualifiedlead", "opportunity": "opportunity", "customer": "customer"}
HUBSPOT_STAGE_LABEL = {"subscriber": "Became a Subscriber Date", "lead": "Became a Lead Date",
                       "mql": "Became a Marketing Qualified Lead Date", "sql": "Became a Sales Qualified Lead Date",
                       "opportunity": "Became an Opportunity Date", "customer": "Became a Customer Date"}


def hubspot_contact(mapping: Mapping, lead: dict[str, Any], shape: str, rng: random.Random) -> dict[str, Any]:
    """One lead as a HubSpot contact: shape "export" (CSV export: labels) or "api" (v3 JSON, strings)."""
    label = shape == "export"
    pick = "label" if label else "first"
    company = lead.get("company", {})
    stage = lead.get("stage")
    industry = company.get("industry")
    props: dict[str, tuple[str, Any]] = {  # internal name -> (export label, value)
        "hs_object_id": ("Record ID", lead["id"]),
        "firstname": ("First Name", lead.get("first_name")),
        "lastname": ("Last Name", lead.get("last_name")),
        "email": ("Email", lead.get("email")),
        "jobtitle": ("Job Title", lead.get("job_title")),
        "hs_seniority": ("Seniority", mapping.reverse_value("seniority", lead.get("seniority"), pick)),
        "phone": ("Phone Number", f"+61 7 3{rng.randint(1000000, 9999999)}"),
        "company": ("Company Name", company.get("name")),
        "hs_email_domain": ("Email Domain", company.get("domain")),
        "industry": ("Industry", rng.choice(HUBSPOT_OTHER_INDUSTRIES) if industry == "other"
                     else mapping.reverse_value("company.industry", industry, pick)),
        "annualrevenue": ("Annual Revenue", company.get("annual_revenue")),
        "numemployees": ("Number of Employees", HUBSPOT_BANDS.get(lead.get("employees"))),
        "country": ("Country/Region", mapping.reverse_value("country", lead.get("country"))),
        "state": ("State/Region", mapping.reverse_value("state", lead.get("state"))),
        "hs_analytics_source": ("Original Source", mapping.reverse_value("source", lead.get("source"), pick)),
        "lifecyclestage": ("Lifecycle Stage", mapping.reverse_value("stage", stage, pick)),
        "hs_lead_status": ("Lead Status", "NEW" if not label else "New"),
        "hubspot_owner_id": ("Contact owner", mapping.reverse_value("account_owner", lead.get("account_owner"), pick)),
        "hs_email_optout": ("Unsubscribed from all email", _text(lead.get("unsubscribed"))),
        "requested_a_quote": ("Requested a quote", _text(lead.get("requested_quote"))),
        "abn": ("ABN", lead.get("abn")),
        "createdate": ("Create Date", _hs_time(lead["_created"], shape) if "_created" in lead else None),
    }
    for native, prop in HUBSPOT_STAGE_PROPERTY.items():
        value = _hs_time(lead["stage_entered_at"], shape) if native == stage and "stage_entered_at" in lead else None
        props[f"hs_lifecyclestage_{prop}_date"] = (HUBSPOT_STAGE_LABEL[native], value)
    if label:
        return {lbl: "" if value is None else _text(value) for lbl, value in props.values()}
    properties = {name: None if value is None else _text(value) for name, (_, value) in props.items()}
    return {"id": lead["id"], "properties": properties, "createdAt": properties["createdate"],
            "updatedAt": properties["createdate"], "archived": False}


def hubspot_engagements(lead: dict[str, Any], rng: random.Random, start: int) -> list[dict[str, Any]]:
    """The lead's activities as engagements (+ emails and inbound calls the mapping skips)."""
    rows = []
    kinds = {"call_attempt": ("CALL", "OUTBOUND", ""), "discovery_call_booked": ("MEETING", "", "Discovery call"),
             "demo_request": ("MEETING", "", "Demo")}
    acts = list(lead.get("activities", []))
    if acts and rng.random() < 0.5:
        acts.append({"type": "_email", "at": acts[0]["at"]})
    if acts and rng.random() < 0.2:
        acts.append({"type": "_inbound", "at": acts[-1]["at"]})
    for act in acts:
        kind, direction, activity_type = kinds.get(act["type"], ("EMAIL", "", "") if act["type"] == "_email"
                                                   else ("CALL", "INBOUND", ""))
        rows.append({"hs_object_id": str(start + len(rows)), "contact_id": lead["id"], "hs_engagement_type": kind,
                     "hs_timestamp": _epoch_ms(act["at"]),
                     "hubspot_owner_id": str(71000001 + rng.randrange(15)), "hs_call_direction": direction,
                     "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7" if kind == "CALL" else "",
                     "hs_activity_type": activity_type})
    return rows


# ------------------------------------------------------------------------------------------ Salesforce


def _sf_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def salesforce_lead(mapping: Mapping, lead: dict[str, Any], shape: str, rng: random.Random) -> dict[str, Any]:
    """One lead as a Salesforce Lead: shape "export" (Data Loader CSV) or "api" (REST JSON with attributes)."""
    company = lead.get("company", {})
    stage = lead.get("stage")
    entered = lead.get("stage_entered_at")
    converted = stage == "opportunity"
    country = lead.get("country")
    row: dict[str, Any] = {
        "Id": lead["id"], "FirstName": lead.get("first_name"), "LastName": lead.get("last_name"),
        "Email": lead.get("email"), "Title": lead.get("job_title"), "Phone": f"+61 2 9{rng.randint(1000000, 9999999)}",
        "Company": company.get("name"), "Website": company.get("domain"),
        "Industry": mapping.reverse_value("company.industry", company.get("industry")),
        "AnnualRevenue": company.get("annual_revenue"), "NumberOfEmployees": lead.get("employees"),
        "Country": mapping.reverse_value("country", country, column="Country") if country else None,
        "CountryCode": country, "State": mapping.reverse_value("state", lead.get("state"), column="State")
        if lead.get("state") else None, "StateCode": lead.get("state"),
        "LeadSource": mapping.reverse_value("source", lead.get("source")) if lead.get("source") else "Other",
        "Status": mapping.reverse_value("stage", stage, column="Status"),
        "IsConverted": converted, "ConvertedDate": entered[:10] if converted and entered else None,
        "OwnerId": mapping.reverse_value("account_owner", lead["account_owner"]) if lead.get("account_owner")
        else "00G5g00000Triage1AAA",
        "HasOptedOutOfEmail": lead.get("unsubscribed"), "Requested_Quote__c": lead.get("requested_quote"),
        "ABN__c": lead.get("abn"),
        "MQL_Date__c": _sf_time(entered) if stage == "mql" and entered else None,
        "SQL_Date__c": _sf_time(entered) if stage == "sql" and entered else None,
        "CreatedDate": _sf_time(entered if stage == "lead" and entered else lead["_created"]),
    }
    if shape == "export":
        return {k: "" if v is None else _text(v) for k, v in row.items()}
    return {"attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{lead['id']}"}, **row}


def salesforce_tasks(lead: dict[str, Any], rng: random.Random, start: int) -> list[dict[str, Any]]:
    """The lead's activities as Task (calls, emails) and Event (meetings) rows in one file."""
    rows = []
    acts = list(lead.get("activities", []))
    if acts and rng.random() < 0.5:
        acts.append({"type": "_email", "at": acts[0]["at"]})
    for act in acts:
        base = {"Id": f"00T5g0000{start + len(rows):06d}AAA", "WhoId": lead["id"],
                "OwnerId": f"0055g00000Rep{rng.randrange(1, 16):02d}AAA", "TaskSubtype": "", "CallType": "",
                "EventSubtype": "", "Type": "", "Subject": "", "ActivityDate": act["at"][:10],
                "CompletedDateTime": "", "StartDateTime": "", "CallDisposition": ""}
        if act["type"] == "call_attempt":
            base.update(TaskSubtype="Call", CallType="Outbound", Subject="Call", CompletedDateTime=_sf_time(act["at"]),
                        CallDisposition=rng.choice(["No answer", "Left voicemail", "Connected"]))
        elif act["type"] == "_email":
            base.update(TaskSubtype="Email", Subject="Email: Following up")
        else:
            base.update(EventSubtype="Event", Type="Demo" if act["type"] == "demo_request" else "Meeting",
                        Subject="Demo" if act["type"] == "demo_request" else "Discovery call",
                        StartDateTime=_sf_time(act["at"]))
        rows.append(base)
    return rows


# ------------------------------------------------------------------------------------------ Pipedrive

PIPEDRIVE_ADMIN = 13000000  # the account admin: owns leads no rep owns (the preset skips it)
PIPEDRIVE_HOT = "f0359510-e376-5300-b071-35a8c363c9a7"


def pipedrive_custom_fields(mapping: Mapping) -> dict[str, str]:
    """lead field -> the 40-character custom field key the preset reads it from."""
    return {f: str(mapping.source_name(f)) for f in ("abn", "requested_quote", "stage_entered_at")}


def _pd_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def pipedrive_lead(mapping: Mapping, lead: dict[str, Any], shape: str, rng: random.Random, number: int,
                   ) -> dict[str, Any]:
    """One lead as Pipedrive holds it: shape "api" (/v1/leads item with its person and organization nested) or
    "warehouse" (Fivetran's lead table joined to person and organization, columns prefixed)."""
    custom = pipedrive_custom_fields(mapping)
    owner = int(mapping.reverse_value("account_owner", lead["account_owner"])) if lead.get("account_owner") \
        else PIPEDRIVE_ADMIN
    labels = [mapping.reverse_value("stage", lead["stage"])] + ([PIPEDRIVE_HOT] if rng.random() < 0.3 else [])
    person_id, org_id = 5000 + number, 9000 + number
    country, state = lead.get("country"), lead.get("state")
    org = {"id": org_id, "name": lead["company"]["name"], "owner_id": owner,
           "address": ", ".join(filter(None, [mapping.reverse_value("state", state) if state else None,
                                              mapping.reverse_value("country", country)])),
           "address_country": mapping.reverse_value("country", country),
           "address_admin_area_level_1": mapping.reverse_value("state", state) if state else None,
           "address_locality": None, "address_postal_code": None, "employee_count": lead.get("employees")}
    emails = [{"value": lead["email"], "primary": True, "label": "work"}]
    if rng.random() < 0.3:
        emails.insert(0, {"value": f"{lead['first_name'].lower()}{number}@gmail.com", "primary": False, "label": "home"})
    person = {"id": person_id, "name": f"{lead['first_name']} {lead['last_name']}", "first_name": lead["first_name"],
              "last_name": lead["last_name"], "email": emails,
              "phone": [{"value": f"+61 4{rng.randint(10000000, 99999999)}", "primary": True, "label": "mobile"}],
              "org_id": org_id, "owner_id": owner, "job_title": lead.get("job_title"),
              "marketing_status": "unsubscribed" if lead.get("unsubscribed") else "subscribed",
              "add_time": _pd_time(lead["_created"])}
    record: dict[str, Any] = {
        "id": lead["id"], "title": f"{lead['company']['name']} lead", "owner_id": owner, "creator_id": owner,
        "label_ids": labels, "person_id": person_id, "organization_id": org_id,
        "source_name": mapping.reverse_value("source", lead["source"]) if lead.get("source") else "Deal",
        "origin": "ManuallyCreated", "channel": None, "is_archived": False, "was_seen": rng.random() < 0.7,
        "value": None, "expected_close_date": None, "next_activity_id": None,
        "add_time": datetime.fromisoformat(lead["_created"]).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "update_time": None, "visible_to": "3", "cc_email": f"acme+{number}@pipedrivemail.com",
        custom["abn"]: lead.get("abn"), custom["requested_quote"]: lead.get("requested_quote"),
        custom["stage_entered_at"]: _pd_time(lead["stage_entered_at"]) if lead.get("stage_entered_at") else None,
    }
    if shape == "api":
        return {**record, "person": person, "organization": org}
    flat = {k: json.dumps(v) if isinstance(v, list) else v for k, v in record.items()}
    flat.update({f"person_{k}": v for k, v in person.items() if k not in ("id", "email", "phone")})
    flat["person_email"], flat["person_phone"] = lead["email"], person["phone"][0]["value"]
    flat.update({f"organization_{k}": v for k, v in org.items() if k != "id"})
    flat["_fivetran_synced"], flat["_fivetran_deleted"] = "2026-11-23T00:00:00.000Z", False
    return flat


def pipedrive_activities(lead: dict[str, Any], rng: random.Random, start: int, shape: str) -> list[dict[str, Any]]:
    """The lead's done activities as /v1/activities rows, plus planned ones and tasks the preset skips."""
    rows: list[dict[str, Any]] = []
    kinds = {"call_attempt": "call", "meeting": "meeting", "email_sent": "email"}
    owners = _owner_numbers()
    acts = list(lead.get("activities", []))
    for act in acts + ([{"type": "_planned", "at": acts[-1]["at"]}] if acts and rng.random() < 0.4 else []):
        done = act["type"] != "_planned"
        at = datetime.fromisoformat(act["at"]).astimezone(timezone.utc)
        kind = kinds.get(act["type"], rng.choice(["call", "task"]))
        rows.append({"id": start + len(rows), "type": kind, "subject": kind.capitalize(), "done": done,
                     "due_date": at.strftime("%Y-%m-%d"), "due_time": at.strftime("%H:%M"), "duration": "00:15",
                     "marked_as_done_time": at.strftime("%Y-%m-%d %H:%M:%S") if done else None,
                     "user_id": owners[act["actor"]] if done else PIPEDRIVE_ADMIN,
                     "person_id": None, "org_id": None, "deal_id": None, "lead_id": lead["id"],
                     "add_time": at.strftime("%Y-%m-%d %H:%M:%S"), "update_time": None, "note": None})
        if shape == "warehouse":
            rows[-1].update(_fivetran_synced="2026-11-23T00:00:00.000Z", _fivetran_deleted=False)
    return rows


# ------------------------------------------------------------------------------------------ GA4

GA4_DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
GA4_SITE = "https://www.acme.example"
GA4_PAGES = ["/", "/product/routing", "/product/scoring", "/product/sla", "/customers", "/blog/speed-to-lead",
             "/pricing", "/pricing?plan=team"]
GA4_SOURCES = [("(direct)", "(none)", "(direct)"), ("google", "organic", "(organic)"), ("google", "cpc", "brand"),
               ("linkedin.com", "referral", "(referral)"), ("newsletter", "email", "november"),
               ("partner.example", "affiliate", "(referral)")]


def _ga4_param(key: str, value: Any) -> dict[str, Any]:
    """An event parameter as the BigQuery export writes it (INT64 as a string, the unused slots null)."""
    slots = {"string_value": None, "int_value": None, "float_value": None, "double_value": None}
    slots["int_value" if isinstance(value, int) else "string_value"] = str(value)
    return {"key": key, "value": slots}


def ga4_events(leads: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(one day of GA4 events as the BigQuery export writes them, the join table): visits by leads known by
    their lead id, by their hashed e-mail, or only by user_pseudo_id (most in the join table), and anonymous
    visitors who are no lead; automatic events (session_start, scroll, user_engagement) among them."""
    from engine.crm.ga4 import email_hash

    rng = random.Random(f"ga4:{seed}")
    events: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    visitors = [("lead", lead) for lead in leads if rng.random() < 0.6] + [("anon", None)] * (len(leads) // 5)
    for number, (kind, lead) in enumerate(visitors):
        pseudo = f"{rng.randrange(10**9, 10**10)}.{1795000000 + number}"
        how = rng.choices(["id", "hash", "pseudo"], weights=[4, 3, 3])[0] if lead else "pseudo"
        user_id = lead["id"] if how == "id" else email_hash(lead["email"]) if how == "hash" else None
        if lead is not None and how == "pseudo" and rng.random() < 0.85:
            table.append({"user_pseudo_id": pseudo, "lead_id": lead["id"]})
        source, medium, name = rng.choice(GA4_SOURCES)
        moment = GA4_DAY + timedelta(seconds=rng.randrange(0, 86_000))
        session = int(moment.timestamp())
        pages = ["session_start"] + [rng.choice(GA4_PAGES) for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.15:
            pages.append("file_download")
        if rng.random() < 0.1:
            pages.append("generate_lead")
        for step in pages:
            moment += timedelta(seconds=rng.randint(5, 240), microseconds=rng.randrange(10**6))
            params = [_ga4_param("ga_session_id", session)]
            if step == "file_download":
                name_, params = "file_download", params + [
                    _ga4_param("file_name", "/assets/acme-pricing-guide.pdf"),
                    _ga4_param("link_url", f"{GA4_SITE}/assets/acme-pricing-guide.pdf")]
            elif step in ("session_start", "generate_lead"):
                name_, params = step, params + [_ga4_param("page_location", f"{GA4_SITE}/contact")]
            else:
                name_, params = "page_view", params + [_ga4_param("page_location", GA4_SITE + step),
                                                       _ga4_param("page_title", step.strip("/") or "home")]
            events.append({"event_date": moment.strftime("%Y%m%d"), "event_timestamp": str(
                int(moment.timestamp()) * 1_000_000 + moment.microsecond), "event_name": name_,
                "event_params": params, "user_id": user_id, "user_pseudo_id": pseudo,
                "traffic_source": {"name": name, "medium": medium, "source": source},
                "device": {"category": rng.choice(["desktop", "mobile"])}, "platform": "WEB", "stream_id": "4410000001"})
            if name_ == "page_view" and rng.random() < 0.3:
                events.append({**events[-1], "event_name": rng.choice(["scroll", "user_engagement"]),
                               "event_params": params[:1]})
    return events, table


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if value is None else str(value)


# ------------------------------------------------------------------------------------------ files


def crm_records(crm: str, mapping: Mapping, leads: Iterable[dict[str, Any]], shape: str, seed: int,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(lead records, activity records) of `leads` in the CRM's shape."""
    rng = random.Random(f"{crm}:{seed}:shape")
    records, activities = [], []
    for lead in leads:
        if crm == "hubspot":
            records.append(hubspot_contact(mapping, lead, shape, rng))
            activities.extend(hubspot_engagements(lead, rng, 50_000_001 + len(activities)))
        elif crm == "pipedrive":
            records.append(pipedrive_lead(mapping, lead, shape, rng, len(records) + 1))
            activities.extend(pipedrive_activities(lead, rng, 700_001 + len(activities), shape))
        else:
            records.append(salesforce_lead(mapping, lead, shape, rng))
            activities.extend(salesforce_tasks(lead, rng, 1 + len(activities)))
    return records, activities


def csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


FILES = {"hubspot": ("hubspot-contacts.csv", "hubspot-engagements.csv"),
         "salesforce": ("salesforce-leads.csv", "salesforce-tasks.csv")}
PIPEDRIVE_FILES = ("pipedrive-leads.json", "pipedrive-activities.json", "pipedrive-lead-labels.json",
                   "pipedrive-deal-fields.json")
GA4_FILES = ("ga4-events_20261120.jsonl", "ga4-join.csv")
PIPEDRIVE_FIELD_NAMES = {"abn": ("ABN", "varchar"), "requested_quote": ("Requested a quote", "varchar"),
                         "stage_entered_at": ("Label set at", "date")}


def api_page(rows: list[dict[str, Any]]) -> str:
    """A Pipedrive API response page ({"success": true, "data": [...]}), one record per line."""
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    return '{"success": true, "data": [\n' + body + '\n], "additional_data": {"pagination": {"start": 0, ' \
        f'"limit": {len(rows)}, "more_items_in_collection": false}}}}}}\n'


def pipedrive_reference(mapping: Mapping) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the lead-label list, the /dealFields export) of the example account: label ids and names as the preset's
    stage map holds them, and the custom fields it reads by key, with their human names."""
    rule = mapping.rule("stage")
    labels = []
    for _, pairs in (rule.reverse.items() if rule else []):
        spellings = [sp for _, sp in pairs]
        labels.append({"id": spellings[0], "name": spellings[1], "color": "blue", "add_time": "2026-01-05T00:00:00.000Z"})
    labels.append({"id": PIPEDRIVE_HOT, "name": "Hot", "color": "red", "add_time": "2026-01-05T00:00:00.000Z"})
    fields = [{"id": 12000 + i, "key": key, "name": PIPEDRIVE_FIELD_NAMES[field][0],
               "field_type": PIPEDRIVE_FIELD_NAMES[field][1], "edit_flag": True}
              for i, (field, key) in enumerate(pipedrive_custom_fields(mapping).items())]
    fields.insert(0, {"id": 11999, "key": "title", "name": "Title", "field_type": "varchar", "edit_flag": False})
    return labels, fields


def write_examples(out_dir: str | Path, ps: Any, n: int = 2000, seed: int = 12) -> list[Path]:
    """The example exports of both CRMs (see the module docstring)."""
    from engine.crm.mapping import load_mapping

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for crm, (leads_file, acts_file) in FILES.items():
        mapping = load_mapping(crm, ps)
        records, activities = crm_records(crm, mapping, native_leads(n, seed, crm), "export", seed)
        for name, rows in ((leads_file, records), (acts_file, activities)):
            (out / name).write_text(csv_text(rows), encoding="utf-8", newline="")
            written.append(out / name)
    mapping = load_mapping("pipedrive", ps)
    records, activities = crm_records("pipedrive", mapping, native_leads(max(1, n // 4), seed, "pipedrive"), "api",
                                      seed)  # a quarter as many: its API JSON is verbose
    labels, fields = pipedrive_reference(mapping)
    for name, rows in zip(PIPEDRIVE_FILES, (records, activities, labels, fields)):
        (out / name).write_text(api_page(rows), encoding="utf-8", newline="")
        written.append(out / name)
    pd_leads = [strip_private(lead) for lead in native_leads(max(1, n // 4), seed, "pipedrive")]
    events, table = ga4_events(pd_leads, seed)  # visits by the Pipedrive leads (and by people who are none)
    (out / GA4_FILES[0]).write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events),
                                    encoding="utf-8", newline="")
    (out / GA4_FILES[1]).write_text(csv_text(table), encoding="utf-8", newline="")
    return written + [out / name for name in GA4_FILES]


def main(argv: list[str] | None = None) -> None:
    import argparse

    import engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="scenarios/crm")
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--policies", default="policies")
    args = parser.parse_args(argv)
    for path in write_examples(args.out, engine.load_policies(args.policies), args.leads, args.seed):
        print(path)


if __name__ == "__main__":
    main()


__all__ = ["AS_OF", "api_page", "crm_records", "ga4_events", "pipedrive_reference", "csv_text", "native_leads", "strip_private", "write_examples"]
