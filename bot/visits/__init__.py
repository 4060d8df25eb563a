"""Technician visits: bookable windows per city (``visit_slots.csv``), bookings that respect each
window's crews, reminders the day before, and the operators' view (docs/visits.md)."""
