"""Programme records: what DOST and the units did that is not an annual figure (honours,
National Quality Award entries, training courses, communication, model enterprises,
inspections), filed and reviewed like reports, and counted into the indicators they
determine."""
