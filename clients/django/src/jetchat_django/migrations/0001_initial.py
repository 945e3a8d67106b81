from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="HandledEvent",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("handled_at", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={"verbose_name": "handled jetchat event"},
        ),
    ]
