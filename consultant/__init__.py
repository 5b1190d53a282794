"""CaseConsultant: an email consulting desk for medical coding."""
